"""One entry point that turns a `DataConfig` into a `CaptionedDataset`."""

import os

from sagan_tf.data import shapes


def load_dataset(data_config, cache_dir):
    """Reads (or builds, for shapes) the data set a config names."""
    dataset = _read(data_config, cache_dir)
    dataset.strict = data_config.strict
    return dataset


def _read(data_config, cache_dir):
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
        if not data_config.captions_only and _has_photos_by_class_only(data_config.root):
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
