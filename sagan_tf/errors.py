"""Turning a library's exception into our one-line error messages."""

import sys

# Bad input: ValueError (ConfigError, BadExampleError, VocabularyMismatchError
# are ValueErrors) and OSError (a path of the wrong kind, no permission, a full disk).
BAD_INPUT = (OSError, ValueError)


def first_line(error, limit=200):
    """The first line of `error`'s message, cut to `limit` characters (None: not cut).

    Keras and TensorFlow messages can run to pages (every layer a weights
    file failed to load); the first line says what went wrong.
    """
    lines = str(error).strip().splitlines()
    return lines[0][:limit] if lines else type(error).__name__


def exit_status(main, argv=None):
    """Runs a script's `main(argv)`: 0, or 2 after one `error:` line for bad input."""
    try:
        main(argv)
    except BAD_INPUT as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
