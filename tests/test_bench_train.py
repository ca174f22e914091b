import pytest

from sagan_tf import config as config_module
from sagan_tf.training import bench, precision
from tests.benchmark_scripts import load_benchmark
from tests.tiny_configs import TINY_GAN


@pytest.mark.parametrize("class_loss_weight", [0.0, 1.0])
def test_bench_train_times_full_steps(class_loss_weight):
    config = config_module.load(None, [*TINY_GAN, "data.image_size=16", "encoder.output_dim=16",
                                       f"gan.class_loss_weight={class_loss_weight}", "train.jit_compile=true"])
    result = bench.bench_train(config, modes=("graph",), steps=2, warmup=1)
    assert result["images_per_second"]["graph"] > 0
    assert config.train.jit_compile is True  # the caller's config is left as it was
    assert (result["batch_size"], result["image_size"], result["steps"]) == (16, 16, 2)
    # What the machine computes fast, beside the figures.
    assert result["cpu_bfloat16_units"] == precision.native_bfloat16_cpu(precision.cpu_flags())
    assert result["what_auto_picks"] == precision.resolve("auto")


def test_reuse_fakes_benchmark_times_both_steps_alternately():
    benchmark = load_benchmark("reuse_fakes")
    config = config_module.load(None, [*TINY_GAN, "data.image_size=16", "encoder.output_dim=16"])
    result = benchmark.compare(config, mode="graph", rounds=2, steps=2, warmup=1)
    assert [len(figures) for figures in result["runs"].values()] == [2, 2]
    assert config.gan.reuse_fakes is False  # the caller's config is left as it was
    assert all(figure > 0 for figures in result["runs"].values() for figure in figures)
    assert result["ratio"] == round(result["reused_fakes"] / result["fresh_noise"], 3)
    for name in ("fresh_noise", "reused_fakes"):
        assert min(result["runs"][name]) <= result[name] <= max(result["runs"][name])


def test_bench_train_refuses_step_counts_it_cannot_time():
    # Zero steps would never end (the batches repeat); the first step traces the graph.
    for steps, warmup in ((0, 1), (2, 0), (-2, 1)):
        with pytest.raises(ValueError, match="steps and warmup must be at least 1"):
            bench.bench_train(config_module.load(None), modes=("graph",), steps=steps, warmup=warmup)


def test_the_pytorch_reference_is_asked_for_the_configs_step():
    from sagan_tf.commands.bench import TORCH_SCRIPT, torch_command

    config = config_module.load(None, [*TINY_GAN, "data.image_size=16", "encoder.output_dim=12",
                                       "gan.reuse_fakes=true"])
    command = torch_command(config, steps=4, warmup=2)
    assert command[1] == TORCH_SCRIPT
    flags = dict(zip(command[2:-1:2], command[3:-1:2]))
    assert flags == {"--batch": "16", "--image-size": "16", "--ngf": "8", "--ndf": "8", "--noise-dim": "8",
                     "--condition-dim": "12", "--condition-units": "8", "--steps": "4", "--warmup": "2"}
    assert command[-1] == "--reuse-fakes"
    for setting in ("gan.class_loss_weight=1.0", "gan.gan_int=true"):
        with pytest.raises(ValueError, match="the PyTorch reference has no class loss or GAN-INT"):
            torch_command(config_module.load(None, [setting]), steps=4, warmup=2)


def test_benchmark_scripts_answer_bad_arguments_with_one_error_line(tmp_path):
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    for script, arguments, expected in [
        ("reuse_fakes.py", ["--steps", "0"], "steps and warmup must be at least 1"),
        ("int8_converter_settings.py", ["--workdir", str(tmp_path / "nowhere")], "nowhere"),
    ]:
        finished = subprocess.run([sys.executable, os.path.join(REPO, "benchmarks", script), *arguments],
                                  cwd=REPO, capture_output=True, text=True, timeout=300)
        assert finished.returncode == 2, finished.stderr[-2000:]
        assert finished.stderr.strip().splitlines()[-1].startswith("error: ") and expected in finished.stderr
        assert "Traceback" not in finished.stderr


def test_bench_train_command_refuses_an_empty_or_repeated_mode_list(tmp_path, capsys):
    from tests.cli_runner import run

    for modes in (",", "", "graph,graph"):
        status, _, err = run(capsys, "bench", "train", "--workdir", str(tmp_path / "w"), "--modes", modes)
        assert status == 2 and "--modes must name each mode to time once" in err
