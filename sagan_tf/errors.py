"""Turning a library's exception into our one-line error messages."""


def first_line(error, limit=200):
    """The first line of `error`'s message, cut to `limit` characters (None: not cut).

    Keras and TensorFlow messages can run to pages (every layer a weights
    file failed to load); the first line says what went wrong.
    """
    lines = str(error).strip().splitlines()
    return lines[0][:limit] if lines else type(error).__name__
