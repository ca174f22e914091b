"""Training callbacks: samples, checkpoints, the best epoch kept across resumes, backups a kill
cannot tear, exact resume, NaN stop, iterator release times."""

import json
import os
import signal
import time
import warnings

import h5py
import keras
import numpy as np
import tensorflow as tf

from sagan_tf import errors, files, pixels, visualize


class SampleGrid(keras.callbacks.Callback):
    """Every epoch: a grid of samples for fixed captions and fixed noise,
    saved as PNG and written to TensorBoard beside the losses."""

    def __init__(self, captions, embeddings, out_dir, samples_per_caption=6, seed=0, log_dir=None):
        super().__init__()
        self.captions = list(captions)
        self.embeddings = np.repeat(np.asarray(embeddings, np.float32), samples_per_caption, axis=0)
        self.samples_per_caption = samples_per_caption
        self.out_dir = out_dir
        self.seed = seed
        self.writer = tf.summary.create_file_writer(log_dir) if log_dir else None

    def images(self):
        noise = self.model.sample_noise(self.samples_per_caption, seed=self.seed)
        noise = np.tile(np.asarray(noise), (len(self.captions), 1))
        images = np.asarray(self.model.generate(self.embeddings, noise=noise))
        return images.reshape(len(self.captions), self.samples_per_caption, *images.shape[1:])

    def on_epoch_end(self, epoch, logs=None):
        grid = self.images()
        visualize.caption_grid(grid, self.captions, os.path.join(self.out_dir, f"epoch_{epoch + 1:04d}.png"))
        if self.writer is not None:
            with self.writer.as_default(step=epoch + 1):
                rows = np.concatenate([np.concatenate(list(r), axis=1) for r in grid], axis=0)
                tf.summary.image("samples", pixels.to_unit_range(rows[None]))
                for name, value in (logs or {}).items():
                    tf.summary.scalar(name, float(np.mean(value)))
            self.writer.flush()


class GANCheckpoint(keras.callbacks.Callback):
    """Saves the generator and discriminator (.keras) every `every` epochs and at the end."""

    def __init__(self, directory, every=1):
        super().__init__()
        self.directory = directory
        self.every = every

    def save(self, tag):
        for name, network in (("generator", self.model.generator), ("discriminator", self.model.discriminator)):
            files.save_keras_file(network, os.path.join(self.directory, f"{name}-{tag}.keras"))

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every == 0:
            self.save(f"epoch{epoch + 1:04d}")
        self.save("latest")


class TrainingDiverged(ValueError):
    """A loss became NaN or infinite (a ValueError: the CLI reports it in one line)."""


class StopOnNaN(keras.callbacks.Callback):
    """Stops at the first non-finite loss with a message saying which and when.

    Put it before the backup callback: Keras calls callbacks in order, and
    a backup taken at the diverged step would resume from broken weights.
    """

    epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        for name, value in (logs or {}).items():
            if name.endswith("loss") and not np.all(np.isfinite(value)):
                self.model.stop_training = True
                raise TrainingDiverged(
                    f"{name} became {float(np.mean(value))} at step {batch + 1} of epoch {self.epoch + 1}; training "
                    "stopped. Lower train.learning_rate, or use float32 precision; backups hold only the "
                    "steps before.")


class IteratorReleaseClock(keras.callbacks.Callback):
    """Times the moments fit() releases a data iterator, where TF 2.21 could stall.

    Keras drops the previous validation iterator when a validation pass
    starts, drops it again at fit()'s end and releases the training iterator
    as fit() returns. `validation_starts` holds, per validation pass, the
    seconds from the epoch's last training step to the pass's start;
    `seconds_since_last_epoch()` called after fit() covers both releases at
    its end (see `pipeline.without_autotune_thread` for the stall and its fix).
    """

    def __init__(self):
        super().__init__()
        self.validation_starts = []
        self.last_epoch_ended = None
        self._last_step = None

    def on_train_batch_end(self, batch, logs=None):
        self._last_step = time.perf_counter()

    def on_test_begin(self, logs=None):
        if self._last_step is not None:
            self.validation_starts.append(time.perf_counter() - self._last_step)
            self._last_step = None

    def on_epoch_end(self, epoch, logs=None):
        self.last_epoch_ended = time.perf_counter()

    def seconds_since_last_epoch(self):
        return None if self.last_epoch_ended is None else time.perf_counter() - self.last_epoch_ended


def save_weights_with_record(model, path, attribute, record):
    """Saves `model`'s weights to `path` atomically, with `record` (JSON) stored inside the file."""
    with files.written_atomically(path) as scratch:
        model.save_weights(scratch)
        with h5py.File(scratch, "a") as f:
            f.attrs[attribute] = json.dumps(record)


def read_weights_record(path, attribute):
    """The record stored in the weights file at `path`, or None when it holds none (OSError when unreadable)."""
    with h5py.File(path, "r") as f:
        stored = f.attrs.get(attribute)
    return None if stored is None else json.loads(stored)


class KeepBest(keras.callbacks.Callback):
    """Keeps the weights of a run's best epoch on disk, across interruptions.

    Keras's ModelCheckpoint and EarlyStopping(restore_best_weights) start
    each fit() knowing no best score, so after a resume the first epoch
    replaced the best checkpoint and the run ended on worse weights. Here
    the score and the run's name are stored inside the weights file; a run
    resumed under the same name starts from that score, and `restore()`
    loads the best epoch's weights at the end.
    """

    RECORD_ATTRIBUTE = "sagan_tf_best_epoch"

    def __init__(self, path, run, monitor="val_accuracy"):
        super().__init__()
        self.path, self.run, self.monitor = path, run, monitor
        self.best = -np.inf

    def recorded(self):
        """{"run", monitor, "epoch"} of the kept weights when they are this run's, else None."""
        if not os.path.isfile(self.path):
            return None
        try:
            record = read_weights_record(self.path, self.RECORD_ATTRIBUTE)
        except OSError:  # damaged: the next better epoch replaces it
            return None
        return record if record and record.get("run") == self.run else None

    def on_train_begin(self, logs=None):
        self.best = (self.recorded() or {}).get(self.monitor, -np.inf)

    def on_epoch_end(self, epoch, logs=None):
        score = (logs or {}).get(self.monitor)
        if score is not None and score > self.best:
            self.best = float(score)
            save_weights_with_record(self.model, self.path, self.RECORD_ATTRIBUTE,
                                     {"run": self.run, self.monitor: self.best, "epoch": epoch})

    def restore(self):
        """Loads the best epoch's weights into the model; returns that epoch (None when none was kept)."""
        record = self.recorded()
        if record is None:
            return None
        self.model.load_weights(self.path)
        return record["epoch"]


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """BackupAndRestore whose backup survives a kill at any moment.

    Keras overwrites the weights file in place and keeps the epoch in a
    second file, so a SIGKILL during a save leaves a torn HDF5 file (the
    next run fails with "file signature not found") or weights and epoch
    that disagree. Here the position is stored inside the weights file,
    which is written beside the old one and renamed over it: a backup is
    the previous one or the new one, whole.
    """

    WEIGHTS_FILE = "latest.weights.h5"
    POSITION_ATTRIBUTE = "sagan_tf_training_position"

    def __init__(self, backup_dir, save_freq="epoch", restore_dir=None):
        """`restore_dir`: the backup to resume from, when not `backup_dir` (another worker's)."""
        super().__init__(backup_dir, save_freq=save_freq, delete_checkpoint=False)
        self.restore_dir = restore_dir or backup_dir

    def position(self):
        """What the backup records besides the weights: the epoch to resume at."""
        return {"epoch": self._current_epoch}

    @classmethod
    def read_position(cls, backup_dir):
        """The position saved with the backup in `backup_dir`, or None when there is none."""
        path = os.path.join(backup_dir, cls.WEIGHTS_FILE)
        if not os.path.exists(path):
            return None
        try:
            stored = read_weights_record(path, cls.POSITION_ATTRIBUTE)
        except OSError as error:  # damaged by hand or by the disk: atomic saves never tear it
            raise ValueError(f"the backup {path} is unreadable ({error}); "
                             f"delete {backup_dir} to train from the start") from None
        if stored is not None:
            return stored
        # A backup written by Keras's own callback, as sagan_tf's were before they
        # became atomic: its position is in a side file.
        side_file = os.path.join(backup_dir, "training_metadata.json")
        if not os.path.exists(side_file):
            raise ValueError(f"the backup {path} records no training position; "
                             f"delete {backup_dir} to train from the start")
        return files.read_json(side_file, "Keras backup position", required=("epoch",))

    def _save_model(self):
        save_weights_with_record(self.model, os.path.join(self.backup_dir, self.WEIGHTS_FILE),
                                 self.POSITION_ATTRIBUTE, self.position())

    def _load_model(self):
        position = self.read_position(self.restore_dir)
        if position is None:
            return
        optimizer = self.model.optimizer
        if optimizer is not None and not optimizer.built:  # its state is part of the backup
            optimizer.build(self.model.trainable_variables)
        try:
            with warnings.catch_warnings():
                # Keras only warns when it leaves a layer or an optimizer unloaded:
                # resuming without it would not be the run that was backed up.
                warnings.filterwarnings("error", "Skipping", UserWarning)
                self.model.load_weights(os.path.join(self.restore_dir, self.WEIGHTS_FILE))
        except (ValueError, UserWarning) as error:  # Keras lists every object it could not load
            raise ValueError(f"the backup in {self.restore_dir} does not fit the model "
                             f"({errors.first_line(error)}); delete {self.restore_dir} to train from the start") from None
        self.model._initial_epoch = position["epoch"]


class ExactBackupAndRestore(AtomicBackupAndRestore):
    """A backup that also knows how many steps of the epoch were done.

    Keras restores only the epoch; after a mid-epoch kill it would replay the
    whole epoch. Here the backup records the steps completed in the epoch,
    and `resume_point()` lets the trainer run just the rest of it, so an
    interrupted run makes exactly as many optimizer steps as an
    uninterrupted one. A backup is also written at every epoch end.

    The epoch's last step is backed up only at the epoch's end, after
    validation, and the callback goes last in the list: a backup never says
    an epoch is done whose end (checkpoint, samples, log row) has not run.
    """

    def __init__(self, backup_dir, save_freq, steps_done_offset=0, restore_dir=None):
        super().__init__(backup_dir, save_freq=save_freq, restore_dir=restore_dir)
        self.steps_done_offset = steps_done_offset
        self._steps_done = steps_done_offset

    @classmethod
    def resume_point(cls, backup_dir):
        """(epoch, steps done in it) of the last backup in `backup_dir`, or (0, 0)."""
        position = cls.read_position(backup_dir) or {}
        return position.get("epoch", 0), position.get("steps_done", 0)

    def position(self):
        return {**super().position(), "steps_done": self._steps_done}

    def on_epoch_begin(self, epoch, logs=None):
        # Keras leaves this at 0 until the first epoch ends after a restore.
        self._current_epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self._steps_done = self.steps_done_offset + batch + 1
        last_step = batch + 1 == self.params.get("steps")
        if self._should_save_on_batch(batch) and not last_step:
            self._save_model()

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        self._steps_done = self.steps_done_offset = 0
        self._save_model()


class GracefulTermination:
    """Turns SIGTERM into KeyboardInterrupt so a killed run leaves a backup."""

    def __enter__(self):
        self.previous = signal.signal(signal.SIGTERM, self._raise)
        return self

    @staticmethod
    def _raise(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    def __exit__(self, *exc):
        signal.signal(signal.SIGTERM, self.previous)
        return False
