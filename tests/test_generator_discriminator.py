import keras
import numpy as np
import pytest

from sagan_tf.models.discriminator import Discriminator
from sagan_tf.models.generator import Generator, resolution_steps


def tiny_generator(image_size=16, **kwargs):
    return Generator(
        noise_dim=8, condition_dim=8, image_size=image_size, ngf=8, final_channels=6, **kwargs)


def tiny_discriminator(image_size=16, **kwargs):
    return Discriminator(
        image_size=image_size, ndf=8, condition_dim=8, condition_units=4, **kwargs)


def random_inputs(batch=3, seed=0):
    """Noise and sentence vectors for the tiny models (both of length 8)."""
    rng = np.random.default_rng(seed)
    return tuple(rng.normal(size=(batch, 8)).astype("float32") for _ in range(2))


@pytest.mark.parametrize("image_size", [8, 16, 32, 64])
def test_shapes_for_each_image_size(image_size):
    noise, condition = random_inputs()
    images = tiny_generator(image_size)([noise, condition])
    assert tuple(images.shape) == (3, image_size, image_size, 3)
    assert images.dtype == "float32"
    assert np.all(np.abs(images) <= 1.0)
    logits = tiny_discriminator(image_size)([images, keras.ops.convert_to_tensor(condition)])
    assert tuple(logits.shape) == (3, 1)
    assert logits.dtype == "float32"


def test_generator_accepts_a_tuple_or_a_list():
    generator = tiny_generator()
    noise, condition = random_inputs()
    np.testing.assert_allclose(generator((noise, condition)), generator([noise, condition]))


@pytest.mark.parametrize("image_size", [48, 50, 4, 0, 16.0, True])
def test_unsupported_image_sizes_are_refused(image_size):
    with pytest.raises(ValueError, match="the generator can make 8, 16, 32, 64, 128"):
        Generator(image_size=image_size)
    with pytest.raises(ValueError, match="image_size"):
        Discriminator(image_size=image_size)


def test_resolution_steps():
    assert [resolution_steps(size) for size in (8, 16, 64, 128)] == [1, 2, 4, 5]


def test_layer_plan_follows_the_spec_at_64_pixels():
    # SPEC §2 / §3 with ngf = ndf = 8 (the spec's 64 scaled down by 8).
    generator = Generator(noise_dim=100, condition_dim=128, image_size=64, ngf=8, final_channels=48)
    shapes = {layer.name: tuple(layer.output.shape[1:]) for layer in generator.layers}
    assert shapes["to_4x4"] == (4, 4, 64)
    assert [shapes[f"up{i}_relu"] for i in range(4)] == [
        (8, 8, 32), (16, 16, 16), (32, 32, 8), (64, 64, 8)]
    assert shapes["refine_relu"] == (64, 64, 48)
    assert shapes["rgb"] == (64, 64, 3)

    discriminator = Discriminator(image_size=64, ndf=8, condition_dim=128, condition_units=128)
    shapes = {layer.name: tuple(layer.output.shape[1:])
              for part in (discriminator.image_tower, discriminator.pair_head)
              for layer in part.layers}
    assert [shapes[f"down{i}_lrelu"] for i in range(4)] == [
        (32, 32, 8), (16, 16, 16), (8, 8, 32), (4, 4, 64)]
    assert "down0_bn" not in shapes and "down1_bn" in shapes
    assert shapes["condition_tiled"] == (4, 4, 128)
    assert shapes["joint_lrelu"] == (4, 4, 64)
    assert shapes["logits"] == (1,)


def test_channel_growth_is_capped_at_8_ndf():
    discriminator = Discriminator(image_size=128, ndf=4, condition_dim=8, condition_units=4)
    channels = [discriminator.image_tower.get_layer(f"down{i}_conv").filters for i in range(5)]
    assert channels == [4, 8, 16, 32, 32]
    generator = Generator(noise_dim=4, condition_dim=8, image_size=128, ngf=4, final_channels=4)
    channels = [generator.get_layer(f"up{i}_conv").filters for i in range(5)]
    assert channels == [16, 8, 4, 4, 4]


def test_condition_changes_the_logit():
    discriminator = tiny_discriminator()
    images = np.random.default_rng(1).uniform(-1, 1, (2, 16, 16, 3)).astype("float32")
    _, condition = random_inputs(batch=2)
    a = discriminator([images, condition])
    b = discriminator([images, -condition])
    assert not np.allclose(a, b)


def test_outputs_stay_float32_under_mixed_bfloat16():
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        generator, discriminator = tiny_generator(), tiny_discriminator()
    finally:
        keras.config.set_dtype_policy("float32")
    assert generator.get_layer("up0_conv").compute_dtype == "bfloat16"
    assert all(weight.dtype == "float32" for weight in generator.weights + discriminator.weights)
    noise, condition = random_inputs()
    images = generator([noise, condition], training=True)
    logits = discriminator([images, keras.ops.convert_to_tensor(condition)], training=True)
    assert images.dtype == "float32" and logits.dtype == "float32"


@pytest.mark.parametrize("make", [tiny_generator, tiny_discriminator])
def test_save_and_load_round_trip(tmp_path, make):
    model = make(synchronized_batch_norm=False)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(model)
    assert loaded.get_config() == model.get_config()
    for saved, restored in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(saved.numpy(), restored.numpy())
    noise, condition = random_inputs()
    inputs = [noise, condition] if make is tiny_generator else [
        np.zeros((3, 16, 16, 3), "float32"), condition]
    np.testing.assert_allclose(model(inputs), loaded(inputs), rtol=1e-6, atol=1e-6)


def test_class_head_reads_the_image_alone():
    discriminator = tiny_discriminator(num_classes=5)
    images = np.random.default_rng(0).uniform(-1, 1, (3, 16, 16, 3)).astype("float32")
    _, condition = random_inputs()
    logits, class_logits = discriminator([images, condition])
    assert logits.shape == (3, 1) and class_logits.shape == (3, 5) and class_logits.dtype == "float32"
    _, other_condition_classes = discriminator([images, condition + 1.0])
    np.testing.assert_allclose(class_logits, other_condition_classes, atol=1e-6)
    assert discriminator.get_config()["num_classes"] == 5
    with pytest.raises(ValueError, match="num_classes must be >= 0"):
        tiny_discriminator(num_classes=-1)
