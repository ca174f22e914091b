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


def test_json_and_text_are_written_whole_or_not_at_all(tmp_path):
    path = tmp_path / "results.json"
    files.write_json(str(path), {"caption": "ein Vogel über dem Meer", "accuracy": 0.5})
    assert files.read_json(str(path), "results file") == {"caption": "ein Vogel über dem Meer",
                                                           "accuracy": 0.5}
    with pytest.raises(TypeError):
        files.write_json(str(path), {"accuracy": object()})  # fails half-way through the value
    assert files.read_json(str(path), "results file")["accuracy"] == 0.5
    files.write_text(str(tmp_path / "vocab.txt"), "<pad>\n<unk>\nbird\n")
    assert (tmp_path / "vocab.txt").read_text(encoding="utf-8") == "<pad>\n<unk>\nbird\n"
    assert sorted(os.listdir(tmp_path)) == ["results.json", "vocab.txt"]


def test_a_record_never_vouches_for_files_replaced_after_it(tmp_path):
    record, model = tmp_path / "encoder.json", tmp_path / "encoder.bin"
    with files.replaced_under_record(str(record), {"weights": "new"}):
        model.write_bytes(b"new")
    assert files.read_json(str(record), "record") == {"weights": "new"}
    with pytest.raises(KeyboardInterrupt):
        with files.replaced_under_record(str(record), {"weights": "newer"}):
            model.write_bytes(b"half of the newe")
            raise KeyboardInterrupt  # a kill while the files are replaced
    assert not record.exists()  # no record, rather than the old one beside other files


def test_a_damaged_cache_is_rebuilt_with_a_warning(tmp_path, capsys):
    from sagan_tf.data import shapes

    dataset, path = shapes.build_or_load(str(tmp_path), num_images=30, captions_per_image=1, image_size=16)
    whole = open(path, "rb").read()
    open(path, "wb").write(whole[: len(whole) // 2])  # a disk that filled up, a copy cut short
    again, _ = shapes.build_or_load(str(tmp_path), num_images=30, captions_per_image=1, image_size=16)
    out = capsys.readouterr().out
    assert "unreadable" in out and path in out
    np.testing.assert_array_equal(again.images, dataset.images)
    assert files.read_cache(str(tmp_path / "absent.npz"), np.load) is None


def test_damaged_json_and_keras_files_get_errors_that_name_them(tmp_path):
    import keras

    path = tmp_path / "settings.json"
    for text, message in (("{", "Expecting property name"),
                          ("[]", "expected a JSON object with max_length"),
                          ("{}", "expected a JSON object with max_length")):
        path.write_text(text)
        with pytest.raises(ValueError, match=f"settings.json is not a valid tokenizer settings file: {message}"):
            files.read_json(str(path), "tokenizer settings file", required=("max_length",))
    model_path = tmp_path / "model.keras"
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.save(model_path)
    with pytest.raises(ValueError, match="model.keras holds a Sequential, not a generator"):
        files.load_keras_file(str(model_path), "generator", expected_class=keras.layers.Dense)
    model_path.write_bytes(model_path.read_bytes()[:100])
    with pytest.raises(ValueError, match="model.keras could not be loaded as a generator \\(damaged"):
        files.load_keras_file(str(model_path), "generator")


def test_a_damaged_backup_names_the_directory_to_delete(tmp_path):
    from sagan_tf.training.callbacks import AtomicBackupAndRestore

    (tmp_path / AtomicBackupAndRestore.WEIGHTS_FILE).write_bytes(b"not hdf5 at all")
    with pytest.raises(ValueError, match=f"is unreadable .*delete {tmp_path} to train from the start"):
        AtomicBackupAndRestore.read_position(str(tmp_path))
