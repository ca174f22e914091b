"""Loads research pickles (split lists) without trusting them.

A pickle can name any importable callable and have it run while loading.
The split files of StackGAN/AttnGAN only hold lists of strings, so the
unpickler here resolves no global at all: the plain containers and scalars
below are built by pickle opcodes directly, and anything else is refused
before it can run.
"""

import pickle

ALLOWED_TYPES = (list, tuple, dict, str, bytes, int, float, bool, type(None))
# What a damaged or truncated pickle stream raises inside the unpickler.
_CORRUPT_PICKLE_ERRORS = (pickle.UnpicklingError, EOFError, ValueError, IndexError, KeyError,
                          TypeError)


class UnreadablePickleError(pickle.UnpicklingError, ValueError):
    """A pickle that cannot be read: a ValueError too, like all bad input here."""


class UnsafePickleError(UnreadablePickleError):
    """A pickle that needs more than plain containers and scalars."""


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        raise UnsafePickleError(
            f"forbidden global {module}.{name}: only lists, tuples, dicts, strings, "
            "bytes, numbers, bools and None may be unpickled")


def _check_types(value, path):
    """Refuses containers built by opcodes but not allowed (sets, bytearrays)."""
    pending = [value]
    seen = set()
    while pending:
        item = pending.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if not isinstance(item, ALLOWED_TYPES):
            raise UnsafePickleError(
                f"{path}: forbidden type {type(item).__name__} in pickle")
        if isinstance(item, (list, tuple)):
            pending.extend(item)
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())


def _unpickle(file, encoding):
    return _RestrictedUnpickler(file, encoding=encoding).load()


def load(path):
    """Returns the plain Python data stored in the pickle file at `path`.

    Python 2 pickles store text as byte strings; they are decoded as UTF-8,
    or as Latin-1 when that fails, so both file-name lists and legacy 8-bit
    text come back as `str`.
    """
    with open(path, "rb") as file:
        try:
            try:
                value = _unpickle(file, "utf-8")
            except UnicodeDecodeError:
                file.seek(0)
                value = _unpickle(file, "latin1")
        except UnsafePickleError as error:
            raise UnsafePickleError(f"{path}: {error}") from None
        except _CORRUPT_PICKLE_ERRORS as error:
            raise UnreadablePickleError(f"{path}: not a readable pickle ({error})") from None
    _check_types(value, path)
    return value
