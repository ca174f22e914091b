"""The project's files: written so that a kill never leaves a torn one, and
read so that a damaged one gets a message naming it (or, for caches, a rebuild)."""

import contextlib
import json
import os
import shutil
import zipfile

# What reading a damaged .npz / .keras / JSON file raises (BadZipFile is neither).
_DAMAGED = (OSError, ValueError, TypeError, KeyError, EOFError, zipfile.BadZipFile)


@contextlib.contextmanager
def written_atomically(path):
    """Yields a scratch path beside `path`; once the block has written it, it replaces `path`.

    The rename is atomic on one file system, so a reader (or the next run
    after a SIGKILL) sees the old file or the new one, whole. The scratch
    name keeps the suffix, which `np.savez` and Keras's savers insist on.
    """
    directory, name = os.path.split(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    scratch = os.path.join(directory, f".incoming-{name}")
    try:
        yield scratch
    except BaseException:
        if os.path.exists(scratch):
            os.remove(scratch)
        raise
    os.replace(scratch, path)


def write_text(path, text):
    """Writes `text` (UTF-8) to `path` atomically."""
    with written_atomically(path) as scratch, open(scratch, "w", encoding="utf-8") as f:
        f.write(text)


def write_json(path, value):
    """Writes `value` as indented JSON to `path` atomically."""
    write_text(path, json.dumps(value, indent=1, ensure_ascii=False))


@contextlib.contextmanager
def replaced_under_record(record_path, record):
    """For files that a JSON record vouches for: the record goes, the block replaces the files, the record comes back.

    A kill in between leaves no record rather than one that vouches for
    other files; a block that raises leaves no record either.
    """
    if os.path.exists(record_path):
        os.remove(record_path)
    yield
    write_json(record_path, record)


def save_keras_file(model, path):
    """Saves `model` to the .keras file `path` atomically."""
    with written_atomically(path) as scratch:
        model.save(scratch)


@contextlib.contextmanager
def folder_written_atomically(path, own_names):
    """Yields a scratch folder beside `path`; once the block has filled it, it takes `path`'s place.

    Files that belong together (models and the card describing them) are
    never a mix of two writes. `path` may only hold `own_names`, so that
    pointing it at a folder of other files is refused instead of replacing it.
    """
    if os.path.exists(path):
        if not os.path.isdir(path):
            raise ValueError(f"{path} is a file; name a folder")
        others = sorted(set(os.listdir(path)) - set(own_names))
        if others:
            raise ValueError(f"{path} holds other files ({', '.join(others[:4])}); name a new folder, "
                             "or one an earlier export of this kind wrote")
    parent, name = os.path.split(os.path.abspath(path))
    scratch, retired = (os.path.join(parent, f".{stage}-{name}") for stage in ("incoming", "previous"))
    for leftover in (scratch, retired):
        shutil.rmtree(leftover, ignore_errors=True)
    os.makedirs(scratch)
    try:
        yield scratch
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    if os.path.exists(path):
        os.replace(path, retired)
    os.replace(scratch, path)
    shutil.rmtree(retired, ignore_errors=True)


def read_cache(path, read):
    """`read(path)`, or None when the cache file is absent or damaged (the caller rebuilds it)."""
    if not os.path.exists(path):
        return None
    try:
        return read(path)
    except _DAMAGED as error:
        print(f"warning: the cache {path} is unreadable ({type(error).__name__}: {error}); rebuilding it")
        return None


def read_json(path, what, required=()):
    """The JSON object in `path`; a ValueError naming the file when it is not one with the `required` keys."""
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
    except ValueError as error:  # bad JSON, or not UTF-8
        raise ValueError(f"{path} is not a valid {what}: {error}") from None
    if not isinstance(value, dict) or any(key not in value for key in required):
        raise ValueError(f"{path} is not a valid {what}: expected a JSON object with {', '.join(required)}")
    return value


def load_keras_file(path, what, expected_class=None):
    """The model in the .keras file `path`; a ValueError naming the file when it holds no `what`."""
    import keras

    try:
        model = keras.models.load_model(path)
    except _DAMAGED as error:
        # Keras reports a damaged archive as "File not found".
        raise ValueError(f"{path} could not be loaded as a {what} (damaged, or not a .keras file): "
                         f"{type(error).__name__}: {error}") from None
    if expected_class is not None and not isinstance(model, expected_class):
        raise ValueError(f"{path} holds a {type(model).__name__}, not a {what}")
    return model
