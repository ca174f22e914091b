import os
import shutil
import subprocess
import sys

import pytest

from tests.cli_runner import last_json, run

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "cub_real")
TINY = ["--set", "data.num_images=60", "--set", "data.captions_per_image=2", "--set", "data.image_size=32"]


def test_data_build_stats_show_on_shapes(tmp_path, capsys):
    workdir = str(tmp_path / "run")
    status, out, _ = run(capsys, "data", "build", "--workdir", workdir, "--json", *TINY)
    assert status == 0
    result = last_json(out)
    assert sum(result["examples"].values()) == 60 and result["classes"] == 60
    assert os.path.isfile(os.path.join(workdir, "config.yaml"))
    # Later commands need only the workdir: the config travels in it.
    status, out, _ = run(capsys, "data", "stats", "--workdir", workdir, "--json")
    stats = last_json(out)
    assert sum(stats["captions"].values()) == 120
    assert "circle/purple" in stats["held_out_pairs"]
    out_png = str(tmp_path / "sheet.png")
    status, out, _ = run(capsys, "data", "show", "--workdir", workdir, "--out", out_png, "--n", "5", "--json")
    assert status == 0 and last_json(out)["images"] == 5
    assert open(out_png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_only_commands_that_build_or_train_keep_their_overrides(tmp_path, capsys):
    workdir = str(tmp_path / "run")
    assert run(capsys, "data", "build", "--workdir", workdir, *TINY)[0] == 0
    saved = open(os.path.join(workdir, "config.yaml")).read()
    # A look with other settings, and a command that fails, leave the workdir's config alone.
    status, out, _ = run(capsys, "data", "stats", "--workdir", workdir, "--json", "--set", "data.num_images=30")
    assert status == 0 and sum(last_json(out)["examples"].values()) == 30
    status, _, err = run(capsys, "generate", "a caption", "--workdir", workdir, "--set", "gan.ngf=4")
    assert status == 2 and "no trained text encoder" in err
    # A build or training command refused for bad input puts the config back too.
    status, _, err = run(capsys, "train-gan", "--workdir", workdir, "--set", "train.batch_size=9")
    assert status == 2 and "no trained text encoder" in err
    assert open(os.path.join(workdir, "config.yaml")).read() == saved
    status, _, err = run(capsys, "data", "build", "--workdir", str(tmp_path / "new"), "--set", "data.name=cub",
                         "--set", f"data.root={tmp_path / 'absent'}")
    assert status == 2 and not os.path.exists(tmp_path / "new" / "config.yaml")


def test_image_outputs_and_paths_of_the_wrong_kind(tmp_path, capsys):
    workdir = str(tmp_path / "run")
    assert run(capsys, "data", "build", "--workdir", workdir, *TINY)[0] == 0
    # No format named: a PNG, and the message says where it went.
    status, out, _ = run(capsys, "data", "show", "--workdir", workdir, "--out", str(tmp_path / "sheet"), "--n", "2")
    assert status == 0 and f"wrote {tmp_path / 'sheet.png'}" in out and (tmp_path / "sheet.png").is_file()
    status, _, err = run(capsys, "data", "show", "--workdir", workdir, "--out", str(tmp_path))
    assert status == 2 and "is a directory; name an image file" in err
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    status, _, err = run(capsys, "data", "build", "--workdir", str(a_file), *TINY)
    assert status == 2 and err.startswith("error: ") and "a_file" in err
    status, _, err = run(capsys, "data", "show", "--workdir", workdir, "--out", str(a_file / "deeper" / "x.png"))
    assert status == 2 and f"{a_file} is a file, not a folder" in err
    status, _, err = run(capsys, "data", "show", "--workdir", workdir, "--out", "")
    assert status == 2 and "--out is empty" in err
    assert not os.path.exists(os.path.join(workdir, "contact_sheet.png"))


def test_bad_config_gets_one_line_error(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  nmae: shapes\n")
    status, _, err = run(capsys, "data", "stats", "--config", str(bad), "--workdir", str(tmp_path / "w"))
    assert status == 2
    assert err.startswith("error: ") and "unknown key 'data.nmae'" in err and "bad.yaml" in err


def test_a_data_set_too_large_for_memory_is_refused_before_building(tmp_path, capsys):
    workdir = tmp_path / "w"
    status, _, err = run(capsys, "data", "build", "--workdir", str(workdir),
                         "--set", "data.num_images=1000000000")
    assert status == 2 and "data.num_images=1000000000 at 64 px needs about" in err and "GiB" in err
    assert not (workdir / "data").exists() or not list((workdir / "data").iterdir())
    assert not (workdir / "config.yaml").exists()  # the refused --set is not kept


def test_missing_data_directory(tmp_path, capsys):
    status, _, err = run(capsys, "data", "stats", "--workdir", str(tmp_path / "w"),
                         "--set", "data.name=cub", "--set", f"data.root={tmp_path / 'nowhere'}")
    assert status == 2 and "is not a directory" in err


def _broken_copy(tmp_path):
    root = tmp_path / "cub"
    shutil.copytree(FIXTURE, root)
    first_class = sorted(os.listdir(root / "text_c10"))[0]
    files = sorted(os.listdir(root / "text_c10" / first_class))
    (root / "text_c10" / first_class / files[0]).write_bytes(b"\xff\xfe bad bytes \xc3")
    (root / "text_c10" / first_class / files[1]).write_text("")
    return str(root)


def test_bad_examples_are_skipped_and_counted_or_stop_with_strict(tmp_path, capsys):
    root = _broken_copy(tmp_path)
    args = ["data", "stats", "--workdir", str(tmp_path / "w"), "--set", "data.name=cub",
            "--set", f"data.root={root}", "--set", "data.captions_only=true", "--set", "data.split=image"]
    status, out, _ = run(capsys, *args, "--json")
    assert status == 0
    skipped = last_json(out)["skipped"]
    assert skipped["caption file is not UTF-8"] == 1 and skipped["empty caption file"] == 1
    assert "skipped 1 example(s): empty caption file" in out
    status, _, err = run(capsys, *args, "--strict")
    assert status == 2 and err.startswith("error: ") and ("not UTF-8" in err or "empty" in err)


def test_show_on_captions_only_data_is_a_clear_error(tmp_path, capsys):
    status, _, err = run(capsys, "data", "show", "--workdir", str(tmp_path / "w"), "--set", "data.name=cub",
                         "--set", f"data.root={FIXTURE}", "--set", "data.captions_only=true",
                         "--set", "data.split=image")
    assert status == 2 and "has no images" in err


def test_cub_real_photos_are_prepared_and_shown(tmp_path, capsys):
    workdir = str(tmp_path / "w")
    status, out, _ = run(capsys, "data", "build", "--workdir", workdir, "--set", "data.name=cub",
                         "--set", f"data.root={FIXTURE}", "--set", "data.split=image", "--json")
    assert status == 0
    result = last_json(out)
    assert result["name"] == "cub_real_by_class" and sum(result["with_images"].values()) == 10
    cached = [f for f in os.listdir(os.path.join(workdir, "data")) if f.endswith(".npz")]
    assert cached  # decoded once, reused by later runs
    status, out, _ = run(capsys, "data", "show", "--workdir", workdir, "--n", "3", "--json")
    assert status == 0 and last_json(out)["images"] == 3


@pytest.mark.parametrize("preset, expected", [(None, "1"), ("0", "0")])
def test_the_cli_turns_onednn_on_unless_told_otherwise(preset, expected):
    # In a fresh interpreter: TensorFlow reads the variable once, at import.
    env = {key: value for key, value in os.environ.items() if key != "TF_ENABLE_ONEDNN_OPTS"}
    if preset is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = preset
    code = "import os, sagan_tf.cli, sys; assert 'tensorflow' not in sys.modules; " \
           "print(os.environ['TF_ENABLE_ONEDNN_OPTS'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == expected


def test_a_damaged_split_pickle_is_one_error_line_and_leaves_the_config(tmp_path, capsys):
    workdir = str(tmp_path / "w")
    assert run(capsys, "data", "build", "--workdir", workdir, *TINY)[0] == 0
    saved = open(os.path.join(workdir, "config.yaml")).read()
    root = tmp_path / "cub"
    shutil.copytree(FIXTURE, root)
    (root / "splits" / "train" / "filenames.pickle").write_bytes(b"garbage")
    status, _, err = run(capsys, "data", "build", "--workdir", workdir, "--set", "data.name=cub",
                         "--set", f"data.root={root}", "--set", "data.split=class", "--set", "data.captions_only=true")
    assert status == 2 and err.startswith("error: ") and "filenames.pickle: not a readable pickle" in err
    assert "Traceback" not in err
    assert open(os.path.join(workdir, "config.yaml")).read() == saved


def test_build_counts_the_images_that_decode_on_every_run(tmp_path, capsys):
    root = tmp_path / "cub"
    shutil.copytree(FIXTURE, root)
    photo = sorted((root / "images_by_class").rglob("*.jpg"))[0]
    photo.write_bytes(photo.read_bytes()[:300])  # truncated
    args = ["data", "build", "--workdir", str(tmp_path / "w"), "--set", "data.name=cub",
            "--set", f"data.root={root}", "--set", "data.split=image", "--set", "data.image_size=16", "--json"]
    for _ in range(2):  # decoded, then read from the cache
        status, out, _ = run(capsys, *args)
        assert status == 0
        result = last_json(out)
        assert sum(result["images"].values()) == sum(result["with_images"].values()) - 1 == 9
        assert result["skipped"] == {"truncated image file": 1}
    status, _, err = run(capsys, *args, "--strict")
    assert status == 2 and "truncated image file" in err


def test_an_empty_data_set_is_refused(tmp_path, capsys):
    root = tmp_path / "empty"
    (root / "images").mkdir(parents=True)
    (root / "captions").mkdir()
    status, _, err = run(capsys, "data", "build", "--workdir", str(tmp_path / "w"), "--set", "data.name=folder",
                         "--set", f"data.root={root}")
    assert status == 2 and "the train split of folder is empty" in err
    assert not (tmp_path / "w" / "config.yaml").exists()
