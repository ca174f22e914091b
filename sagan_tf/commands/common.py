"""What every subcommand does first: the workdir and its resolved config."""

from sagan_tf.workdir import Workdir


def setup(args, record=False):
    """Returns (workdir, config) for parsed command-line `args`.

    `record`: the command builds or trains, so its config (with `--set`)
    becomes the workdir's; the other commands leave the workdir's as it is.
    """
    workdir = Workdir(args.workdir)
    config = workdir.resolve_config(args.config, args.overrides, record=record)
    return workdir, config


def flags(*adders):
    """Attaches `add_arguments(parser)` to a command function."""
    def attach(function):
        def add_arguments(parser):
            for add in adders:
                add(parser)
        function.add_arguments = add_arguments
        return function
    return attach


def setup_with_dataset(args, record=True):
    """(workdir, config, dataset) for commands that read the data set (and, with `record`, train the workdir's models)."""
    from sagan_tf.data import registry

    workdir, config = setup(args, record=record)
    if getattr(args, "strict", False):  # `data` commands' --strict: stop at the first bad example
        config.data.strict = True
    return workdir, config, registry.load_dataset(config.data, workdir.data_cache_dir(config))


def out_path(args, default=None):
    """`--out`, or `default` when it was not given; an empty `--out ""` is refused, not read as the default."""
    if args.out is None:
        return default
    if not args.out.strip():
        raise ValueError("--out is empty; name a file or folder")
    return args.out


def quiet_flag(parser):
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def verbosity(args, progress=1):
    """Keras `verbose` for a command: 0 with --quiet, else `progress` (1 bar, 2 one line per epoch)."""
    return 0 if args.quiet else progress
