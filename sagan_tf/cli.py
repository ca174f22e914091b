"""The `sagan-tf` command line: thin subcommands over the library.

Every subcommand takes `--config FILE`, repeatable `--set key.sub=value`,
`--workdir DIR` and `--json` (one final JSON line with the results).
Expected failures (bad config, missing files, bad data) end with a one-line
`error:` message and exit status 2, never a traceback.
"""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# TF turns its oneDNN kernels on by default only on CPUs with AVX512-VNNI,
# bfloat16 or AMX units; on a 2-core AVX2 CPU they made the demo's training
# step 1.66x faster (benchmarks/README.md). Set before TensorFlow is
# imported; an explicit TF_ENABLE_ONEDNN_OPTS=0 still wins.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

COMMANDS = {}


def command(name, help_text):
    """Registers `function(args) -> dict` as a subcommand with its own flags."""
    def register(function):
        COMMANDS[name] = (function, help_text)
        return function
    return register


def _common_flags(parser):
    parser.add_argument("--config", help="YAML config file (default: the workdir's, else built-in defaults)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set train.epochs=5 (repeatable)")
    parser.add_argument("--workdir", default="runs/shapes", help="run directory (default: runs/shapes)")
    parser.add_argument("--json", action="store_true", help="print one final JSON line with the results")


def build_parser():
    # Importing the command modules registers their subcommands.
    from sagan_tf import commands  # noqa: F401

    parser = argparse.ArgumentParser(prog="sagan-tf", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name, (function, help_text) in sorted(COMMANDS.items()):
        words = name.split(" ")
        if len(words) == 1:
            sub = subparsers.add_parser(name, help=help_text)
        else:
            group = subparsers.choices.get(words[0])
            if group is None:
                group = subparsers.add_parser(words[0], help=f"{words[0]} subcommands")
                group.add_subparsers(dest="subcommand", required=True)
            group_subparsers = next(a for a in group._actions if isinstance(a, argparse._SubParsersAction))
            sub = group_subparsers.add_parser(words[1], help=help_text)
        _common_flags(sub)
        function.add_arguments(sub) if hasattr(function, "add_arguments") else None
        sub.set_defaults(handler=function)
    return parser


def lost_a_worker(error):
    """Whether `error` is how a multi-worker run fails when another worker dies."""
    tf = sys.modules.get("tensorflow")  # imported by then, if the command trained
    return tf is not None and isinstance(error, (tf.errors.UnavailableError, tf.errors.AbortedError))


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    from sagan_tf import errors
    from sagan_tf.workdir import Workdir

    expected_failures = errors.BAD_INPUT
    try:
        with Workdir(args.workdir).config_restored_on(expected_failures):
            result = args.handler(args)
    except expected_failures as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if not lost_a_worker(error):
            raise
        print(f"error: a worker of the cluster was lost ({errors.first_line(error)}); start every worker "
              "again: they resume together from the chief's backup", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, default=str))
    return 0
