import json
import os
import socket
import subprocess
import sys

import h5py
import numpy as np
import pytest
import tensorflow as tf

from sagan_tf.training import distribution
from sagan_tf.training.callbacks import ExactBackupAndRestore

WORKER_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tiny_gan.py")
REPO = os.path.dirname(os.path.dirname(WORKER_SCRIPT))
TIMEOUT_S = 300


def tf_config(ports, index):
    return json.dumps({
        "cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]},
        "task": {"type": "worker", "index": index},
    })


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def start_worker(command, output, tf_config_value=None):
    return start([WORKER_SCRIPT, command, str(output)], tf_config_value)


def start(arguments, tf_config_value=None):
    python_path = os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, PYTHONPATH=python_path)
    env.pop("TF_CONFIG", None)
    if tf_config_value:
        env["TF_CONFIG"] = tf_config_value
    return subprocess.Popen([sys.executable, *arguments], env=env, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def wait_all(processes):
    logs = []
    try:
        for process in processes:
            logs.append(process.communicate(timeout=TIMEOUT_S)[0])
    except subprocess.TimeoutExpired:
        # What every worker had written by then: where a hung cluster stood.
        for process in processes:
            process.kill()
        logs += [process.communicate()[0] for process in processes[len(logs):]]
        pytest.fail(f"workers still running after {TIMEOUT_S} s:\n" +
                    "\n--- next worker ---\n".join(log[-3000:] for log in logs))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    for process, log in zip(processes, logs):
        assert process.returncode == 0, log[-4000:]


def test_cluster_workers(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert distribution.cluster_workers() == 0
    monkeypatch.setenv("TF_CONFIG", "")  # set empty: unset
    assert distribution.cluster_workers() == 0 and distribution.worker_index() == 0
    monkeypatch.setenv("TF_CONFIG", tf_config([1, 2, 3], 0))
    assert distribution.cluster_workers() == 3
    monkeypatch.setenv("TF_CONFIG", json.dumps(
        {"cluster": {"chief": ["a:1"], "worker": ["b:1"]}, "task": {"type": "chief", "index": 0}}))
    assert distribution.cluster_workers() == 2


def test_worker_index(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert distribution.worker_index() == 0
    monkeypatch.setenv("TF_CONFIG", tf_config([1, 2, 3], 2))
    assert distribution.worker_index() == 2
    cluster = {"chief": ["a:1"], "worker": ["b:1", "c:1"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "chief", "index": 0}}))
    assert distribution.worker_index() == 0
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 1}}))
    assert distribution.worker_index() == 2


@pytest.mark.parametrize("raw", ["{not json", "[1, 2]", '{"cluster": ["a:1"]}'])
def test_bad_tf_config_is_refused(monkeypatch, raw):
    monkeypatch.setenv("TF_CONFIG", raw)
    with pytest.raises(ValueError, match="TF_CONFIG is not a JSON object"):
        distribution.strategy_from_environment()


@pytest.mark.parametrize("config", [None, tf_config([12345], 0)])
def test_one_machine_gets_mirrored_strategy(monkeypatch, config):
    if config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", config)
    strategy = distribution.strategy_from_environment()
    assert isinstance(strategy, tf.distribute.MirroredStrategy)
    assert not distribution.in_multi_worker_mode(strategy)


def test_logs_pass_unchanged_outside_multi_worker_mode():
    logs = {"d_loss": tf.constant(1.5)}
    assert distribution.reducible_logs(logs) is logs


def test_replica_gradients_average_over_the_global_batch(tmp_path):
    output = tmp_path / "gradients.npz"
    wait_all([start_worker("replica-gradients", output)])
    result = np.load(output)
    assert result["replicas"] == 2
    np.testing.assert_allclose(result["single"], result["expected"], rtol=1e-5)
    np.testing.assert_allclose(result["distributed"], result["expected"], rtol=1e-5)


def test_two_worker_fit_keeps_workers_in_sync(tmp_path):
    ports = free_ports(2)
    outputs = [tmp_path / f"worker{index}.npz" for index in range(2)]
    wait_all([start_worker("multiworker-fit", output, tf_config(ports, index))
              for index, output in enumerate(outputs)])
    first, second = (np.load(output) for output in outputs)
    assert first["replicas"] == second["replicas"] == 2
    np.testing.assert_allclose(first["final"], second["final"], rtol=0, atol=1e-6)
    np.testing.assert_array_equal(first["initial"], second["initial"])
    assert not np.allclose(first["final"], first["initial"])
    # Logs are averaged over the workers, so both report the same loss.
    np.testing.assert_allclose(first["d_loss"], second["d_loss"], rtol=1e-6)
    assert np.isfinite(first["d_loss"]).all()


def test_train_gan_runs_on_two_workers_from_the_command_line(tmp_path):
    """The CLI path: TF_CONFIG set, the strategy made before anything starts TensorFlow's runtime."""
    from sagan_tf import cli
    from tests.tiny_configs import TINY_DATA, TINY_ENCODER, TINY_GAN, overrides

    workdir = str(tmp_path / "run")
    assert cli.main(["train-encoder", "--workdir", workdir, "--quiet",
                     *overrides(TINY_DATA, TINY_ENCODER, TINY_GAN)]) == 0
    ports = free_ports(2)
    wait_all([start(["-m", "sagan_tf", "train-gan", "--workdir", workdir, "--quiet"], tf_config(ports, index))
              for index in range(2)])
    with open(os.path.join(workdir, "gan", "results.json")) as f:
        results = json.load(f)
    assert results["replicas"] == 2 and results["optimizer_steps"] == 2 * 3
    (run,) = os.listdir(os.path.join(workdir, "gan", "backup"))
    assert sorted(os.listdir(os.path.join(workdir, "gan", "backup", run))) == ["worker_0", "worker_1"]
    assert os.path.isfile(os.path.join(workdir, "gan", "checkpoints", "generator-latest.keras"))

    # A worker lost mid-run leaves the survivors' backups some steps apart; resumed from
    # their own, the workers would run different steps and never meet. Every worker
    # resumes from the chief's backup.
    lagging = os.path.join(workdir, "gan", "backup", run, "worker_1", ExactBackupAndRestore.WEIGHTS_FILE)
    with h5py.File(lagging, "a") as weights:
        weights.attrs[ExactBackupAndRestore.POSITION_ATTRIBUTE] = json.dumps({"epoch": 1, "steps_done": 1})
    ports = free_ports(2)
    wait_all([start(["-m", "sagan_tf", "train-gan", "--workdir", workdir, "--quiet", "--set", "train.epochs=3"],
                    tf_config(ports, index)) for index in range(2)])
    with open(os.path.join(workdir, "gan", "results.json")) as f:
        assert json.load(f)["optimizer_steps"] == 3 * 3


def test_host_fed_dataset_builds_one_plain_pipeline_per_replica():
    from sagan_tf.data import pipeline
    calls = []

    def make_dataset(batch_size, shard_index, num_shards):
        calls.append((batch_size, shard_index, num_shards))
        return pipeline.encoder_dataset(np.arange(20).reshape(10, 2), np.arange(10), batch_size, shuffle=False)

    data = distribution.host_fed_dataset(tf.distribute.MirroredStrategy(["/cpu:0"]), make_dataset, 4)
    assert calls == [(4, 0, 1)]
    iterator = iter(data)
    tokens, labels = next(iterator)
    np.testing.assert_array_equal(labels, [0, 1, 2, 3])
    # The replica reads a plain iterator of our dataset, not a MultiDeviceIterator's
    # per-device copy with TF's default options (its autotuning thread stalled fit()).
    (worker,) = iterator._iterators
    assert isinstance(worker._iterator, tf.data.Iterator)
    # MultiWorkerMirroredStrategy takes the dataset as it is (an uninitialised instance:
    # a real one would set up collectives for the rest of this process).
    multi_worker = object.__new__(tf.distribute.MultiWorkerMirroredStrategy)
    plain = distribution.host_fed_dataset(multi_worker, make_dataset, 4)
    assert isinstance(plain, tf.data.Dataset) and calls[-1] == (4, 0, 1)


def test_a_lost_worker_is_one_error_line_that_says_how_to_resume(monkeypatch, tmp_path, capsys):
    from sagan_tf import cli
    from sagan_tf.training import gan_training

    def lost(*args, **kwargs):
        raise tf.errors.UnavailableError(None, None, "Socket closed\nmore detail")

    monkeypatch.setattr(gan_training, "train_gan", lost)
    assert cli.main(["train-gan", "--workdir", str(tmp_path / "w"), "--set", "data.num_images=20"]) == 2
    assert capsys.readouterr().err == ("error: a worker of the cluster was lost (Socket closed); start every "
                                       "worker again: they resume together from the chief's backup\n")
