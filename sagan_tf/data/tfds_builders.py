"""tensorflow-datasets builders, so users get prepared, sharded, versioned data.

    import sagan_tf.data.tfds_builders  # registers the builders
    ds = tfds.load("captioned_shapes", data_dir=...)             # generated here
    ds = tfds.load("cub_captions", data_dir=...,                  # from a manual dir
                   download_and_prepare_kwargs={"download_config":
                       tfds.download.DownloadConfig(manual_dir="/data/birds")})

Nothing is downloaded: the shapes are generated and the real data sets are
read from the manual directory with the readers in `sagan_tf.data`.
"""

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from sagan_tf.config import DataConfig
from sagan_tf.data import prepare, registry, shapes
from sagan_tf.data import shapes_grammar as grammar

SPLITS = ("train", "validation", "test")


@dataclasses.dataclass
class ShapesBuilderConfig(tfds.core.BuilderConfig):
    num_images: int = 20000
    captions_per_image: int = 10
    image_size: int = 64
    seed: int = 0


class CaptionedShapes(tfds.core.GeneratorBasedBuilder):
    """The built-in captioned-shapes data set (see `sagan_tf.data.shapes`)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release."}
    BUILDER_CONFIGS = [
        ShapesBuilderConfig(name="default", description="20,000 images, 10 captions each, 64x64"),
        ShapesBuilderConfig(name="small", num_images=2000, description="2,000 images, 10 captions each, 64x64"),
        ShapesBuilderConfig(name="tiny", num_images=200, captions_per_image=3, image_size=32,
                            description="200 images, 3 captions each, 32x32 (for tests)"),
    ]

    def _info(self):
        size = self.builder_config.image_size
        attributes = {name: tfds.features.ClassLabel(names=values) for name, values in grammar.ATTRIBUTES.items()}
        return self.dataset_info_from_configs(
            description="One anti-aliased shape on a plain background with 10 grammar captions; "
                        "label = (shape, object colour); some pairs appear only in test.",
            features=tfds.features.FeaturesDict({
                "name": tfds.features.Text(),
                "image": tfds.features.Image(shape=(size, size, 3)),
                "captions": tfds.features.Sequence(tfds.features.Text()),
                "label": tfds.features.ClassLabel(names=shapes.class_names()),
                "attributes": attributes,
            }),
            supervised_keys=("captions", "label"),
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # generated, nothing to download
        config = self.builder_config
        dataset = shapes.generate(config.num_images, config.captions_per_image, config.image_size, config.seed)
        return {split: self._generate_examples(dataset, split) for split in SPLITS}

    def _generate_examples(self, dataset, split):
        for example in dataset.splits[split]:
            attributes = {k: v for k, v in example.attributes[0].items() if k in grammar.ATTRIBUTES}
            yield example.name, {
                "name": example.name,
                "image": dataset.images[example.image_index],
                "captions": example.captions,
                "label": example.label,
                "attributes": attributes,
            }


@dataclasses.dataclass
class RealBuilderConfig(tfds.core.BuilderConfig):
    # Which reader (cub, flowers, folder) and how, as in DataConfig.
    reader: str = "cub"
    split_kind: str = "class"
    captions_only: bool = False
    # Images are stored cropped (bounding box) and resized to this size.
    image_size: int = 76


class _RealCaptions(tfds.core.GeneratorBasedBuilder):
    """Shared machinery of the builders that read a manual directory."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release."}

    def _info(self):
        config = self.builder_config
        features = {
            "name": tfds.features.Text(),
            "captions": tfds.features.Sequence(tfds.features.Text()),
            "label": tfds.features.Scalar(dtype=np.int64),
        }
        if not config.captions_only:
            features["image"] = tfds.features.Image(shape=(config.image_size, config.image_size, 3))
        return self.dataset_info_from_configs(
            description=self.__doc__,
            features=tfds.features.FeaturesDict(features),
            supervised_keys=("captions", "label"),
        )

    def _split_generators(self, dl_manager):
        config = self.builder_config
        data_config = DataConfig(name=config.reader, root=str(dl_manager.manual_dir),
                                 split=config.split_kind, captions_only=config.captions_only)
        dataset = registry.load_dataset(data_config, cache_dir=None)
        # A partial copy may leave a split empty (e.g. CUB captions of test classes only).
        return {split: self._generate_examples(dataset, split) for split in SPLITS if dataset.splits[split]}

    def _generate_examples(self, dataset, split):
        examples = dataset.splits[split]
        if self.builder_config.captions_only:
            rows = examples
            images = [None] * len(rows)
        else:
            images, rows, _ = prepare.decode_images(dataset, examples, self.builder_config.image_size)
        for example, image in zip(rows, images):
            record = {"name": example.name, "captions": example.captions, "label": example.label}
            if image is not None:
                record["image"] = image
            yield example.name, record


class CubCaptions(_RealCaptions):
    """CUB-200-2011 with the 10 captions per image of Reed et al. 2016."""

    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Place CUB_200_2011/ (images and metadata) and text_c10/ (Reed et al.'s captions), and "
        "optionally train/ and test/ with filenames.pickle (StackGAN split), in the manual directory.")
    BUILDER_CONFIGS = [
        RealBuilderConfig(name="class_split", description="StackGAN/AttnGAN 150/50 class split"),
        RealBuilderConfig(name="caption_split", split_kind="caption", description="the seed's 64/16/20 split"),
        RealBuilderConfig(name="captions_only", captions_only=True, description="captions and labels only"),
    ]


class Flowers102Captions(_RealCaptions):
    """Oxford-102 flowers with the captions of Reed et al. 2016."""

    MANUAL_DOWNLOAD_INSTRUCTIONS = "Place jpg/ and text_c10/ (Reed et al.'s layout) in the manual directory."
    BUILDER_CONFIGS = [RealBuilderConfig(name="default", reader="flowers")]


class CaptionedImageFolder(_RealCaptions):
    """A user's own data: images/<name>.<ext> + captions/<name>.txt (+ classes.txt)."""

    MANUAL_DOWNLOAD_INSTRUCTIONS = "Place images/ and captions/ (and optionally classes.txt) in the manual directory."
    BUILDER_CONFIGS = [RealBuilderConfig(name="default", reader="folder")]
