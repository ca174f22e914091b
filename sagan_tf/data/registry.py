"""One entry point that turns a `DataConfig` into a `CaptionedDataset`."""

import os

from sagan_tf.data import shapes


def load_dataset(data_config, cache_dir):
    """Reads (or builds, for shapes) the data set a config names."""
    dataset = _read(data_config, cache_dir)
    dataset.strict = data_config.strict
    return dataset


# The splits each kind of data set can make ({data.split: what it means});
# `data.split` chooses among CUB's. A folder has no fixed test classes, so
# the default `class` means by image there.
SPLITS = {
    "shapes": ("the shapes data", {"class": "held-out (shape, colour) pairs"}),
    "flowers": ("the flowers data", {"class": "Reed et al.'s test classes"}),
    "folder": ("folder data", {"class": "by image", "image": "by image"}),
    "cub": ("CUB", {"class": "the StackGAN/AttnGAN class split", "caption": "the seed's 64/16/20 caption split",
                    "image": "64/16/20 by image"}),
    "cub_photos_by_class": ("the partial CUB copy's photos (of test classes only)",
                            {"image": "each class's photos split by photo"}),
}


def check_split(kind, split):
    """Raises ValueError when a data set of `kind` cannot make the split `data.split` names."""
    label, splits = SPLITS[kind]
    if split not in splits:
        choices = "; ".join(f"{name} = {what}" for name, what in splits.items())
        raise ValueError(f"data.split={split} is not a split of {label}: choose {choices}")


def _read(data_config, cache_dir):
    photos_by_class = (data_config.name == "cub" and not data_config.captions_only
                       and data_config.root and _has_photos_by_class_only(data_config.root))
    check_split("cub_photos_by_class" if photos_by_class else data_config.name, data_config.split)
    if data_config.name == "shapes":
        dataset, _ = shapes.build_or_load(
            cache_dir, data_config.num_images, data_config.captions_per_image,
            data_config.image_size, data_config.seed)
        return dataset
    if not os.path.isdir(data_config.root):
        raise FileNotFoundError(
            f"data.root {data_config.root!r} is not a directory "
            f"(the {data_config.name} data set is read from there)")
    options = dict(captions_only=data_config.captions_only, strict=data_config.strict,
                   seed=data_config.seed, validation_fraction=data_config.validation_fraction)
    if data_config.name == "cub":
        from sagan_tf.data import cub
        if photos_by_class:
            return cub.load_cub_real_by_class(data_config.root, strict=data_config.strict,
                                              seed=data_config.seed,
                                              validation_fraction=data_config.validation_fraction)
        return cub.load_cub(data_config.root, split=data_config.split, **options)
    if data_config.name == "flowers":
        from sagan_tf.data import flowers
        return flowers.load_flowers(data_config.root, **options)
    from sagan_tf.data import folder
    return folder.load_folder(data_config.root, **options)


def _has_photos_by_class_only(root):
    """The partial CUB copy: photos grouped by class, none under CUB_200_2011/images."""
    return (os.path.isdir(os.path.join(root, "images_by_class"))
            and not os.path.isdir(os.path.join(root, "CUB_200_2011", "images")))
