"""Runs `sagan-tf` in-process for the command-line tests."""

import json

from sagan_tf import cli


def run(capsys, *argv):
    """(exit status, stdout, stderr) of `sagan-tf argv...`."""
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def last_json(out):
    """The final `--json` line of a command's output."""
    return json.loads(out.strip().splitlines()[-1])
