"""Writing files so that a process killed at any moment never leaves a torn one."""

import contextlib
import os


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
