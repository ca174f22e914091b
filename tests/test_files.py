import os

import numpy as np
import pytest

from sagan_tf import files


def test_the_new_file_replaces_the_old_one_whole(tmp_path):
    path = tmp_path / "deep" / "vectors.npz"
    for value in (1.0, 2.0):
        with files.written_atomically(str(path)) as scratch:
            # The scratch keeps the suffix, so np.savez does not append another .npz.
            assert scratch.endswith(".npz") and not os.path.exists(path.with_name("vectors.npz.npz"))
            np.savez(scratch, x=np.full(3, value))
        with np.load(path) as archive:
            assert archive["x"].tolist() == [value] * 3
    assert sorted(os.listdir(path.parent)) == ["vectors.npz"]


def test_a_write_that_fails_leaves_the_old_file_and_no_scratch(tmp_path):
    path = tmp_path / "model.keras"
    path.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        with files.written_atomically(str(path)) as scratch:
            with open(scratch, "wb") as f:
                f.write(b"half of the n")
            raise KeyboardInterrupt
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["model.keras"]
