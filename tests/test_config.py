import glob
import os

import pytest

from sagan_tf import config as config_lib
from sagan_tf.config import ConfigError
from tests.conftest import REPO


def write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(REPO, "configs", "*.yaml"))))
def test_every_shipped_config_loads(path):
    config = config_lib.load(path)
    assert config.data.name in ("shapes", "cub", "flowers", "folder")


def test_defaults_follow_the_spec():
    config = config_lib.load()
    assert (config.encoder.embedding_dim, config.encoder.lstm_units) == (512, 512)
    assert (config.encoder.hops, config.encoder.attention_units) == (30, 350)
    assert (config.encoder.hidden_units, config.encoder.output_dim) == (256, 128)
    assert config.encoder.penalty_weight == 1.0
    assert (config.gan.noise_dim, config.gan.ngf, config.gan.ndf) == (100, 64, 64)
    assert (config.train.learning_rate, config.train.beta_1, config.train.batch_size) == (2e-4, 0.5, 64)


def test_unknown_key_names_key_and_file(tmp_path):
    path = write(tmp_path, "encoder:\n  hopz: 4\n")
    with pytest.raises(ConfigError, match=r"c\.yaml.*unknown key 'encoder\.hopz'"):
        config_lib.load(path)


def test_unknown_section(tmp_path):
    with pytest.raises(ConfigError, match="unknown key 'trian'"):
        config_lib.load(write(tmp_path, "trian:\n  epochs: 1\n"))


def test_wrong_type_names_key(tmp_path):
    with pytest.raises(ConfigError, match=r"c\.yaml: train\.epochs must be of type int, got str"):
        config_lib.load(write(tmp_path, "train:\n  epochs: many\n"))
    with pytest.raises(ConfigError, match="data.augment must be true or false"):
        config_lib.load(write(tmp_path, "data:\n  augment: 3\n"))


def test_impossible_value_names_key(tmp_path):
    with pytest.raises(ConfigError, match=r"c\.yaml: encoder\.hops must be >= 1"):
        config_lib.load(write(tmp_path, "encoder:\n  hops: 0\n"))
    for size in (50, 48, 8):
        with pytest.raises(ConfigError, match=r"data.image_size must be a power of two, at least 16"):
            config_lib.load(write(tmp_path, f"data:\n  image_size: {size}\n"))
    with pytest.raises(ConfigError, match="export.model_name must be a plain folder name"):
        config_lib.load(None, ["export.model_name=../../escaped"])
    with pytest.raises(ConfigError, match=r"data\.max_length must be 0 \(from the data\) or at least 3"):
        config_lib.load(None, ["data.max_length=2"])
    with pytest.raises(ConfigError, match="data.seed must be >= 0"):
        config_lib.load(None, ["data.seed=-1"])
    with pytest.raises(ConfigError, match=r"encoder_train\.label_smoothing must be in \[0, 1\)"):
        config_lib.load(None, ["encoder_train.label_smoothing=1.5"])
    with pytest.raises(ConfigError, match=r"encoder_train\.cosine_decay cannot be combined with lr_decay_patience"):
        config_lib.load(None, ["encoder_train.cosine_decay=true", "encoder_train.lr_decay_patience=1"])


def test_int_accepted_for_float_and_overrides_apply(tmp_path):
    path = write(tmp_path, "train:\n  learning_rate: 1\n")
    config = config_lib.load(path, ["train.epochs=3", "encoder.kind=mean", "data.augment=false"])
    assert config.train.learning_rate == 1.0 and isinstance(config.train.learning_rate, float)
    assert config.train.epochs == 3 and config.encoder.kind == "mean" and config.data.augment is False


def test_exponent_notation_is_a_float_in_files_and_overrides(tmp_path):
    # YAML 1.1 (PyYAML) reads 1e-3 without a dot as a string.
    config = config_lib.load(write(tmp_path, "train:\n  learning_rate: 1e-3\n"), ["encoder_train.learning_rate=3E-4"])
    assert config.train.learning_rate == 1e-3 and config.encoder_train.learning_rate == 3e-4
    with pytest.raises(ConfigError, match="train.learning_rate must be of type float, got str 'fast'"):
        config_lib.load(None, ["train.learning_rate=fast"])
    with pytest.raises(ConfigError, match="train.epochs must be of type int, got str '1e3'"):
        config_lib.load(None, ["train.epochs=1e3"])


def test_bad_override_is_refused():
    with pytest.raises(ConfigError, match="must look like key.sub=value"):
        config_lib.load(None, ["train.epochs"])
    with pytest.raises(ConfigError, match="unknown key 'train.nope'"):
        config_lib.load(None, ["train.nope=1"])
    with pytest.raises(ConfigError, match=r"--set data.root=\[x: the value is not valid YAML: .*"
                                          r"\(line 1, column 3\); quote it if it is text") as caught:
        config_lib.load(None, ["data.root=[x"])
    assert "\n" not in str(caught.value)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        config_lib.load(str(tmp_path / "absent.yaml"))
    with pytest.raises(ConfigError, match="config file is a directory, not a file"):
        config_lib.load(str(tmp_path))
    with pytest.raises(ConfigError, match=r"c.yaml: not valid YAML: .*\(line 2, column 1\)$"):
        config_lib.load(write(tmp_path, "data: [unclosed\n"))
    with pytest.raises(ConfigError, match=r"cannot start any token \(line 2, column 1\)$"):
        config_lib.load(write(tmp_path, "data:\n\tname: shapes\n"))


def test_relative_root_is_relative_to_the_config_file(tmp_path):
    path = write(tmp_path, "data:\n  name: cub\n  root: birds\neval:\n  inception_weights: w/inception.h5\n")
    config = config_lib.load(path)
    assert config.data.root == str(tmp_path / "birds")
    assert config.eval.inception_weights == str(tmp_path / "w" / "inception.h5")


def test_a_relative_path_given_with_set_is_relative_to_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "configs").mkdir()
    path = write(tmp_path / "configs", "data:\n  name: folder\n  root: mine\n")
    config = config_lib.load(path, ["data.root=photos", "data.cache_dir=cache", "eval.inception_weights=i.h5"])
    assert (config.data.root, config.data.cache_dir) == (str(tmp_path / "photos"), str(tmp_path / "cache"))
    assert config.eval.inception_weights == str(tmp_path / "i.h5")
    assert config_lib.load(path).data.root == str(tmp_path / "configs" / "mine")
    assert config_lib.load(None, ["data.root=photos"]).data.root == str(tmp_path / "photos")
    # Recorded absolute: the workdir's copy reads the same from anywhere.
    config.save(str(tmp_path / "configs" / "saved.yaml"))
    monkeypatch.chdir("/")
    assert config_lib.load(str(tmp_path / "configs" / "saved.yaml")).data.root == str(tmp_path / "photos")


def test_save_and_reload_round_trip(tmp_path):
    config = config_lib.load(None, ["encoder.hops=4"])
    config.save(str(tmp_path / "saved.yaml"))
    assert config_lib.load(str(tmp_path / "saved.yaml")) == config


def test_a_config_starts_from_its_base(tmp_path):
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "base.yaml").write_text(
        "data:\n  name: cub\n  root: birds\n  image_size: 32\n"
        "encoder:\n  hops: 4\n  attention_units: 64\n")
    child = tmp_path / "child.yaml"
    child.write_text("base: shared/base.yaml\nencoder:\n  hops: 8\ntrain:\n  epochs: 2\n")
    config = config_lib.load(str(child), ["train.batch_size=8"])
    # Sections merge key by key; the child and --set win.
    assert (config.encoder.hops, config.encoder.attention_units) == (8, 64)
    assert (config.data.name, config.data.image_size) == ("cub", 32)
    assert (config.train.epochs, config.train.batch_size) == (2, 8)
    # A root is relative to the file that names it, not to the file that uses it.
    assert config.data.root == str(tmp_path / "shared" / "birds")


def test_the_shipped_tuned_config_is_its_base_plus_the_search(tmp_path):
    configs = os.path.join(REPO, "configs")
    base = config_lib.load(os.path.join(configs, "cub_real.yaml"))
    tuned = config_lib.load(os.path.join(configs, "cub_real_tuned.yaml"))
    assert tuned.data.root == base.data.root and tuned.train == base.train
    assert (tuned.encoder.hops, tuned.encoder.penalty_weight) == (4, 0.0)


def test_bad_base_configs_are_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"c\.yaml: base config not found: .*absent\.yaml"):
        config_lib.load(write(tmp_path, "base: absent.yaml\n"))
    with pytest.raises(ConfigError, match="base must name a config file"):
        config_lib.load(write(tmp_path, "base: [a.yaml]\n"))
    (tmp_path / "a.yaml").write_text("base: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(ConfigError, match=r"base configs loop: .*a\.yaml -> .*b\.yaml -> .*a\.yaml"):
        config_lib.load(str(tmp_path / "a.yaml"))
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        config_lib.load(write(tmp_path, "base: list.yaml\n"))


def test_an_overrides_errors_name_the_override_not_the_file(tmp_path):
    path = write(tmp_path, "train:\n  epochs: 3\n")
    with pytest.raises(ConfigError, match=r"^--set data\.nmae=x: unknown key 'data\.nmae'"):
        config_lib.load(path, ["data.nmae=x"])
    with pytest.raises(ConfigError, match=r"^--set train\.epochs=many: train\.epochs must be of type int"):
        config_lib.load(path, ["train.epochs=many"])
    with pytest.raises(ConfigError, match=r"^--set encoder\.hops=0: encoder\.hops must be >= 1"):
        config_lib.load(path, ["encoder.hops=0"])
    # The file's own mistakes still name the file, overrides or not.
    bad = write(tmp_path, "encoder:\n  hops: 0\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: encoder\.hops must be >= 1"):
        config_lib.load(bad, ["train.epochs=2"])


def test_text_fields_keep_the_text_typed_and_paths_expand_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    config = config_lib.load(None, ["data.root=2024", "export.model_name=yes"])
    assert config.data.root == str(tmp_path / "2024") and config.export.model_name == "yes"
    assert config_lib.load(None, ["data.cache_dir=null"]).data.cache_dir == ""  # null still means unset
    assert config_lib.load(None, ["data.root=~/birds"]).data.root == str(tmp_path / "home" / "birds")
    path = write(tmp_path, "data:\n  root: ~/photos\n  cache_dir: cache\n")
    config = config_lib.load(path)
    # A cache folder named in a config file is beside the file, like the data root.
    assert (config.data.root, config.data.cache_dir) == (str(tmp_path / "home" / "photos"), str(tmp_path / "cache"))


def test_a_key_given_twice_and_a_file_not_in_utf8_are_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"c\.yaml: not valid YAML: 'data' is given twice \(line 3"):
        config_lib.load(write(tmp_path, "data:\n  name: cub\ndata:\n  name: shapes\n"))
    with pytest.raises(ConfigError, match=r"c\.yaml: not valid YAML: found unhashable key"):
        config_lib.load(write(tmp_path, "data:\n  [a, b]: 1\n"))
    # Merge keys still merge (flattened before the check), and a merged key may be overridden.
    config = config_lib.load(write(tmp_path, "data: &d {seed: 3, max_length: 9}\n"
                                             "encoder_train:\n  <<: {epochs: 4, batch_size: 8}\n  epochs: 5\n"))
    assert (config.data.seed, config.encoder_train.epochs, config.encoder_train.batch_size) == (3, 5, 8)
    path = tmp_path / "latin.yaml"
    path.write_bytes("data:\n  root: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin\.yaml: not UTF-8 text"):
        config_lib.load(str(path))
