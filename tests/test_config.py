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
    with pytest.raises(ConfigError, match="data.image_size must be a multiple of 16"):
        config_lib.load(write(tmp_path, "data:\n  image_size: 50\n"))
    with pytest.raises(ConfigError, match=r"encoder_train\.label_smoothing must be in \[0, 1\)"):
        config_lib.load(None, ["encoder_train.label_smoothing=1.5"])
    with pytest.raises(ConfigError, match=r"encoder_train\.cosine_decay cannot be combined with lr_decay_patience"):
        config_lib.load(None, ["encoder_train.cosine_decay=true", "encoder_train.lr_decay_patience=1"])


def test_int_accepted_for_float_and_overrides_apply(tmp_path):
    path = write(tmp_path, "train:\n  learning_rate: 1\n")
    config = config_lib.load(path, ["train.epochs=3", "encoder.kind=mean", "data.augment=false"])
    assert config.train.learning_rate == 1.0 and isinstance(config.train.learning_rate, float)
    assert config.train.epochs == 3 and config.encoder.kind == "mean" and config.data.augment is False


def test_bad_override_is_refused():
    with pytest.raises(ConfigError, match="must look like key.sub=value"):
        config_lib.load(None, ["train.epochs"])
    with pytest.raises(ConfigError, match="unknown key 'train.nope'"):
        config_lib.load(None, ["train.nope=1"])


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        config_lib.load(str(tmp_path / "absent.yaml"))
    with pytest.raises(ConfigError, match="not valid YAML"):
        config_lib.load(write(tmp_path, "data: [unclosed\n"))


def test_relative_root_is_relative_to_the_config_file(tmp_path):
    path = write(tmp_path, "data:\n  name: cub\n  root: birds\n")
    assert config_lib.load(path).data.root == str(tmp_path / "birds")


def test_save_and_reload_round_trip(tmp_path):
    config = config_lib.load(None, ["encoder.hops=4"])
    config.save(str(tmp_path / "saved.yaml"))
    assert config_lib.load(str(tmp_path / "saved.yaml")) == config
