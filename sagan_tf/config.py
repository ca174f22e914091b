"""Typed, validated experiment configuration loaded from YAML.

A config is a tree of dataclasses. Loading refuses unknown keys, wrong
types and impossible values with a message naming the key and the file, so
that a typo never silently falls back to a default.
"""

import dataclasses
import os
import re
import typing

import yaml

from sagan_tf import files
from sagan_tf.training.precision import PRECISIONS


class ConfigError(ValueError):
    """A config file or override that cannot be used."""


@dataclasses.dataclass
class DataConfig:
    # shapes | cub | flowers | folder
    name: str = "shapes"
    # Root directory of a real data set (ignored for shapes).
    root: str = ""
    # Where built/prepared data lives; empty means `<workdir>/data`.
    cache_dir: str = ""
    num_images: int = 20000
    captions_per_image: int = 10
    image_size: int = 64
    seed: int = 0
    # CUB: class = StackGAN/AttnGAN class split; caption = the seed's 64/16/20
    # split of caption pairs; image = 64/16/20 by image. Other data sets make
    # only their own split (data.registry.SPLITS) and refuse the rest.
    split: str = "class"
    captions_only: bool = False
    # 0 means: the 95th percentile of caption lengths in the training split.
    max_length: int = 0
    min_word_count: int = 1
    validation_fraction: float = 0.1
    # Random crops from a 76/64 larger image + flips (GAN-INT-CLS). Off for
    # shapes, where a flip would contradict "on the left".
    augment: bool = True
    strict: bool = False

    def validate(self, check):
        check(self.name in ("shapes", "cub", "flowers", "folder"), "name",
              "must be one of shapes, cub, flowers, folder")
        check(self.name == "shapes" or self.root, "root",
              f"is required for the {self.name!r} data set")
        check(self.num_images >= 1, "num_images", "must be >= 1")
        check(self.captions_per_image >= 1, "captions_per_image", "must be >= 1")
        # The generator doubles 4x4 up to the image size.
        check(self.image_size >= 16 and self.image_size & (self.image_size - 1) == 0, "image_size",
              "must be a power of two, at least 16 (16, 32, 64, 128, ...)")
        check(self.seed >= 0, "seed", "must be >= 0")
        check(self.split in ("class", "caption", "image"), "split", "must be class, caption or image")
        check(self.max_length == 0 or self.max_length >= 3, "max_length",
              "must be 0 (from the data) or at least 3 (<start>, a word, <end>)")
        check(self.min_word_count >= 1, "min_word_count", "must be >= 1")
        check(0.0 < self.validation_fraction < 1.0, "validation_fraction",
              "must be between 0 and 1")


@dataclasses.dataclass
class EncoderConfig:
    # self_attention | lstm_last | mean
    kind: str = "self_attention"
    embedding_dim: int = 512
    lstm_units: int = 512
    hops: int = 30
    attention_units: int = 350
    hidden_units: int = 256
    output_dim: int = 128
    penalty_weight: float = 1.0
    dropout: float = 0.0

    def validate(self, check):
        check(self.kind in ("self_attention", "lstm_last", "mean"), "kind",
              "must be one of self_attention, lstm_last, mean")
        for key in ("embedding_dim", "lstm_units", "hops", "attention_units",
                    "hidden_units", "output_dim"):
            check(getattr(self, key) >= 1, key, "must be >= 1")
        check(self.penalty_weight >= 0, "penalty_weight", "must be >= 0")
        check(0 <= self.dropout < 1, "dropout", "must be in [0, 1)")


@dataclasses.dataclass
class EncoderTrainConfig:
    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 1e-3
    # Decoupled weight decay (AdamW); 0 is plain Adam.
    weight_decay: float = 0.0
    # ε of the class targets during training (0 = the plain cross-entropy).
    label_smoothing: float = 0.0
    patience: int = 5
    # Epochs without a better validation accuracy before the learning rate
    # is cut to a third (0 = a constant learning rate).
    lr_decay_patience: int = 0
    # Anneal the learning rate on a cosine from `learning_rate` to 0 over
    # `epochs` instead (no dependence on a noisy validation set).
    cosine_decay: bool = False
    # Sentence vectors of every caption cached after training, for the GAN.
    cache_embeddings: bool = True
    # Shapes only: also predict background, size and position, so that the
    # sentence vector keeps what the (shape, colour) class label would drop.
    auxiliary_attributes: bool = False

    def validate(self, check):
        check(self.epochs >= 1, "epochs", "must be >= 1")
        check(self.batch_size >= 1, "batch_size", "must be >= 1")
        check(self.learning_rate > 0, "learning_rate", "must be > 0")
        check(self.weight_decay >= 0, "weight_decay", "must be >= 0")
        check(0 <= self.label_smoothing < 1, "label_smoothing", "must be in [0, 1)")
        check(self.patience >= 1, "patience", "must be >= 1")
        check(self.lr_decay_patience >= 0, "lr_decay_patience", "must be >= 0 (0 = off)")
        check(not (self.cosine_decay and self.lr_decay_patience), "cosine_decay",
              "cannot be combined with lr_decay_patience (the schedule sets the rate; pick one)")


@dataclasses.dataclass
class GANConfig:
    noise_dim: int = 100
    # normal | uniform
    noise: str = "normal"
    ngf: int = 64
    ndf: int = 64
    condition_units: int = 128
    gan_int: bool = False
    int_beta: float = 0.5
    # TAC-GAN auxiliary class loss (not in the SPEC; 0 is plain GAN-CLS): D
    # also names the class of real images, G is pushed to the caption's class.
    class_loss_weight: float = 0.0
    # The G update reuses the D update's fakes instead of fresh noise: one
    # generator forward pass less per step (see TextToImageGAN).
    reuse_fakes: bool = False

    def validate(self, check):
        check(self.noise_dim >= 1, "noise_dim", "must be >= 1")
        check(self.noise in ("normal", "uniform"), "noise", "must be normal or uniform")
        check(self.ngf >= 1 and self.ndf >= 1, "ngf", "ngf and ndf must be >= 1")
        check(self.condition_units >= 1, "condition_units", "must be >= 1")
        check(0.0 <= self.int_beta <= 1.0, "int_beta", "must be in [0, 1]")
        check(self.class_loss_weight >= 0, "class_loss_weight", "must be >= 0")


@dataclasses.dataclass
class TrainConfig:
    epochs: int = 600
    batch_size: int = 64
    learning_rate: float = 2e-4
    beta_1: float = 0.5
    # auto | float32 | mixed_bfloat16 | mixed_float16; auto: bfloat16 where the
    # hardware has it, float16 on older GPUs, else float32 (training/precision.py)
    precision: str = "float32"
    jit_compile: bool = False
    # 0 means a full pass over the data.
    steps_per_epoch: int = 0
    # Steps between backups (BackupAndRestore); one is also made every epoch.
    backup_every_steps: int = 25
    seed: int = 0

    def validate(self, check):
        check(self.epochs >= 1, "epochs", "must be >= 1")
        check(self.batch_size >= 1, "batch_size", "must be >= 1")
        check(self.learning_rate > 0, "learning_rate", "must be > 0")
        check(0.0 <= self.beta_1 < 1.0, "beta_1", "must be in [0, 1)")
        check(self.precision in PRECISIONS, "precision", f"must be one of {', '.join(PRECISIONS)}")
        check(self.steps_per_epoch >= 0, "steps_per_epoch", "must be >= 0")
        check(self.backup_every_steps >= 1, "backup_every_steps", "must be >= 1")


@dataclasses.dataclass
class EvalConfig:
    # domain | inception_v3
    feature_network: str = "domain"
    inception_weights: str = ""
    # Classes of the top in that file: 1000 for ImageNet, fewer for a fine-tuned one.
    inception_classes: int = 1000
    num_images: int = 2000
    batch_size: int = 100
    seed: int = 0
    # The domain classifier (`sagan-tf train-classifier`): epochs and the
    # filters of its first conv block.
    classifier_epochs: int = 20
    classifier_width: int = 32

    def validate(self, check):
        check(self.feature_network in ("domain", "inception_v3"), "feature_network",
              "must be domain or inception_v3")
        check(self.inception_classes >= 2, "inception_classes", "must be >= 2")
        check(self.num_images >= 10, "num_images", "must be >= 10 (10 IS splits)")
        check(self.batch_size >= 1, "batch_size", "must be >= 1")
        check(self.classifier_epochs >= 1, "classifier_epochs", "must be >= 1")
        check(self.classifier_width >= 1, "classifier_width", "must be >= 1")


@dataclasses.dataclass
class ExportConfig:
    model_name: str = "text2image"
    max_batch: int = 64
    tflite_batch: int = 1

    def validate(self, check):
        check(self.max_batch >= 1, "max_batch", "must be >= 1")
        check(self.model_name and os.path.basename(self.model_name) == self.model_name
              and self.model_name not in (".", ".."), "model_name",
              "must be a plain folder name (no path separators)")
        check(self.tflite_batch >= 1, "tflite_batch", "must be >= 1")


@dataclasses.dataclass
class Config:
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    encoder: EncoderConfig = dataclasses.field(default_factory=EncoderConfig)
    encoder_train: EncoderTrainConfig = dataclasses.field(default_factory=EncoderTrainConfig)
    gan: GANConfig = dataclasses.field(default_factory=GANConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    eval: EvalConfig = dataclasses.field(default_factory=EvalConfig)
    export: ExportConfig = dataclasses.field(default_factory=ExportConfig)

    def to_dict(self):
        return dataclasses.asdict(self)

    def save(self, path):
        files.write_text(path, yaml.safe_dump(self.to_dict(), sort_keys=False))


# YAML 1.1 reads 1e-3 (no dot) as a string; it is what people write for rates.
_EXPONENT_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _coerce(value, annotation, key, source):
    """Checks `value` against a field's type; ints and 1e-3 are accepted as floats."""
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation is float and isinstance(value, str) and _EXPONENT_NUMBER.fullmatch(value.strip()):
        return float(value)
    if annotation is bool and not isinstance(value, bool):
        raise ConfigError(f"{source}: {key} must be true or false, got {value!r}")
    if annotation in (int, float) and isinstance(value, bool):
        raise ConfigError(f"{source}: {key} must be a number, got {value!r}")
    if annotation is str and value is None:
        return ""
    if not isinstance(value, annotation):
        raise ConfigError(
            f"{source}: {key} must be of type {annotation.__name__}, "
            f"got {type(value).__name__} {value!r}")
    return value


def _build(cls, values, prefix, source):
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: {prefix or 'the config'} must be a mapping")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in values:
        if key not in names:
            full = f"{prefix}.{key}" if prefix else key
            raise ConfigError(
                f"{source}: unknown key {full!r} (known: {', '.join(sorted(names))})")
    kwargs = {}
    for field in dataclasses.fields(cls):
        full = f"{prefix}.{field.name}" if prefix else field.name
        if field.name not in values:
            continue
        if dataclasses.is_dataclass(hints[field.name]):
            kwargs[field.name] = _build(hints[field.name], values[field.name], full, source)
        else:
            kwargs[field.name] = _coerce(values[field.name], hints[field.name], full, source)
    return cls(**kwargs)


def _validate(config, source, overridden=None):
    """Checks values; a bad one set by an override (`overridden`: key -> override) names the override."""
    overridden = overridden or {}
    for field in dataclasses.fields(config):
        section = getattr(config, field.name)

        def check(ok, key, message, _section=field.name):
            if not ok:
                full = f"{_section}.{key}"
                where = f"--set {overridden[full]}" if full in overridden else source
                raise ConfigError(f"{where}: {full} {message}")

        section.validate(check)


# Paths: a --set gives them relative to the current directory, a config file
# relative to its own folder (so configs travel); `~` is the home folder.
PATHS = ("data.root", "data.cache_dir", "eval.inception_weights")


class _UniqueKeyLoader(yaml.SafeLoader):
    """Refuses a key given twice in one mapping, which PyYAML would let the last win silently."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *anchor` merges keys the mapping's own may override; SafeLoader merges them
            key = self.construct_object(key_node, deep=deep)
            try:
                given_twice = key in seen
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    None, None, "found unhashable key", key_node.start_mark) from None
            if given_twice:
                raise yaml.constructor.ConstructorError(
                    None, None, f"{key!r} is given twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def _field_type(parts):
    """The annotation of the config field at `parts` (e.g. ["data", "root"]), or None."""
    node = Config
    for part in parts:
        if not dataclasses.is_dataclass(node):
            return None
        node = typing.get_type_hints(node).get(part)
    return node


def _yaml_problem(error):
    """PyYAML's several-line message as one line: what is wrong, and where."""
    if not isinstance(error, yaml.MarkedYAMLError) or error.problem_mark is None:
        return " ".join(str(error).split())
    mark = error.problem_mark
    return f"{error.problem} (line {mark.line + 1}, column {mark.column + 1})"


def _apply_override(tree, override, source):
    if "=" not in override:
        raise ConfigError(f"{source}: override {override!r} must look like key.sub=value")
    key, raw = override.split("=", 1)
    parts = key.strip().split(".")
    node = tree
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{source}: {key} does not name a config section")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as error:
        raise ConfigError(f"{source}: the value is not valid YAML: {_yaml_problem(error)}; "
                          "quote it if it is text") from None
    if _field_type(parts) is str and value is not None and not isinstance(value, str):
        value = raw.strip()  # text as typed: a folder named 2024 or yes is not a number or a bool
    if key.strip() in PATHS and isinstance(value, str) and value:
        # Typed in a shell: relative to where it was typed, and recorded so in the workdir's config.
        value = os.path.abspath(os.path.expanduser(value))
    node[parts[-1]] = value


def from_dict(values, overrides=(), source="<config>"):
    """Builds and validates a Config from a nested dict plus `--set` overrides."""
    tree = dict(values or {})
    tree = {k: dict(v) if isinstance(v, dict) else v for k, v in tree.items()}
    config = _build(Config, tree, "", source)  # the file's own keys and types: errors name the file
    overridden = {}
    for override in overrides:
        # An override's errors name the override, not the file it is applied to.
        where = f"--set {override}"
        _apply_override(tree, override, where)
        config = _build(Config, tree, "", where)
        overridden[override.split("=", 1)[0].strip()] = override
    _validate(config, source, overridden)
    return config


def _beside(config_path, path):
    """`path` taken relative to the folder of the config file (an absolute one stays as it is)."""
    return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(config_path)), path))


def _merged(base, child):
    """`child` over `base`: sections merge key by key, everything else is replaced."""
    merged = dict(base)
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_tree(path, chain=()):
    """The YAML tree of `path` over the trees of the configs its `base:` names."""
    if not os.path.isfile(path):
        named_by = f"{chain[-1]}: base config " if chain else "config file "
        found = "is a directory, not a file" if os.path.isdir(path) else "not found"
        raise ConfigError(f"{named_by}{found}: {path}")
    if os.path.abspath(path) in map(os.path.abspath, chain):
        raise ConfigError(f"{path}: base configs loop: {' -> '.join([*chain, path])}")
    with open(path, encoding="utf-8") as f:
        try:
            values = yaml.load(f, Loader=_UniqueKeyLoader)
        except yaml.YAMLError as error:
            raise ConfigError(f"{path}: not valid YAML: {_yaml_problem(error)}") from None
        except UnicodeDecodeError as error:
            raise ConfigError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: the config must be a mapping")
    values = dict(values)
    for key in PATHS:
        section, name = key.split(".")
        node = values.get(section)
        if isinstance(node, dict) and isinstance(node.get(name), str) and node[name]:
            values[section] = {**node, name: _beside(path, os.path.expanduser(node[name]))}
    base = values.pop("base", None)
    if base is None:
        return values
    if not isinstance(base, str) or not base:
        raise ConfigError(f"{path}: base must name a config file, got {base!r}")
    base_path = os.path.join(os.path.dirname(path), base)
    return _merged(_read_tree(base_path, (*chain, path)), values)


def load(path=None, overrides=()):
    """Loads a YAML config file (or the defaults when `path` is None).

    A file may start from another with `base: other.yaml` (relative to the
    file) and list only what differs; sections merge key by key.
    """
    if path is None:
        return from_dict({}, overrides, source="<defaults>")
    return from_dict(_read_tree(path), overrides, source=path)
