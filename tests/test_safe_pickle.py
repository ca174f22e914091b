"""safe_pickle: the research split pickles load, code and unexpected types do not."""

import os
import pickle

import pytest

from sagan_tf.data import safe_pickle
from tests.test_cub import COPIES, FIXTURE_ROOT


class _RunsShellCommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("copy", COPIES)
def test_safe_pickle_loads_the_real_split_pickles(copy):
    train = safe_pickle.load(os.path.join(copy.root, "splits", "train", "filenames.pickle"))
    test = safe_pickle.load(os.path.join(copy.root, "splits", "test", "filenames.pickle"))
    assert (len(train), len(test)) == (8855, 2933)
    assert train[0] == "002.Laysan_Albatross/Laysan_Albatross_0002_1027"
    assert test[0] == "001.Black_footed_Albatross/Black_Footed_Albatross_0046_18"
    assert all(isinstance(name, str) for name in train + test)


def test_safe_pickle_refuses_code_without_running_it(tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pickle"
    path.write_bytes(pickle.dumps([_RunsShellCommand(marker)], protocol=2))
    with pytest.raises(safe_pickle.UnsafePickleError,
                       match=r"forbidden global (posix|os|nt)\.system"):
        safe_pickle.load(path)
    assert not marker.exists()


def test_safe_pickle_class_info_plain_ints_load_numpy_scalars_do_not():
    splits = os.path.join(FIXTURE_ROOT, "splits")
    # The test file holds plain ints: the 1-based class id of each test image.
    class_ids = safe_pickle.load(os.path.join(splits, "test", "class_info.pickle"))
    names = safe_pickle.load(os.path.join(splits, "test", "filenames.pickle"))
    assert class_ids == [int(name[:3]) for name in names]
    # The train file holds numpy scalars, which need a global: refused.
    numpy_scalar = r"class_info\.pickle: forbidden global numpy\.core\.multiarray\.scalar"
    with pytest.raises(safe_pickle.UnsafePickleError, match=numpy_scalar):
        safe_pickle.load(os.path.join(splits, "train", "class_info.pickle"))


def test_safe_pickle_refuses_sets_and_garbage(tmp_path):
    path = tmp_path / "set.pickle"
    path.write_bytes(pickle.dumps([{1, 2}], protocol=4))
    with pytest.raises(safe_pickle.UnsafePickleError, match="forbidden type set"):
        safe_pickle.load(path)
    path.write_bytes(b"\x80\x02]q\x00(X")
    with pytest.raises(pickle.UnpicklingError, match="not a readable pickle"):
        safe_pickle.load(path)


def test_safe_pickle_reads_python2_byte_strings(tmp_path):
    # Protocol 2 as Python 2 writes it: SHORT_BINSTRING ('U') byte strings.
    utf8 = b"\x80\x02]q\x00(U\x06caf\xc3\xa9sq\x01U\x03abcq\x02K\x07\x88Ne."
    latin1 = b"\x80\x02]q\x00U\x03\xe9t\xe9q\x01a."
    (tmp_path / "utf8.pickle").write_bytes(utf8)
    (tmp_path / "latin1.pickle").write_bytes(latin1)
    assert safe_pickle.load(tmp_path / "utf8.pickle") == ["cafés", "abc", 7, True, None]
    assert safe_pickle.load(tmp_path / "latin1.pickle") == ["été"]
