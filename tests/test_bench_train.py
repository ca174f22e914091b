import pytest

from sagan_tf import config as config_module
from sagan_tf.training import bench, precision
from tests.tiny_configs import TINY_GAN


@pytest.mark.parametrize("class_loss_weight", [0.0, 1.0])
def test_bench_train_times_full_steps(class_loss_weight):
    config = config_module.load(None, [*TINY_GAN, "data.image_size=16", "encoder.output_dim=16",
                                       f"gan.class_loss_weight={class_loss_weight}"])
    result = bench.bench_train(config, modes=("graph",), steps=2, warmup=1)
    assert result["images_per_second"]["graph"] > 0
    assert (result["batch_size"], result["image_size"], result["steps"]) == (16, 16, 2)
    # What the machine computes fast, beside the figures.
    assert result["cpu_bfloat16_units"] == precision.native_bfloat16_cpu(precision.cpu_flags())
    assert result["what_auto_picks"] == precision.resolve("auto")
