"""The run directory: everything one experiment makes, in a fixed layout.

Later commands take only the workdir: they read the resolved config saved
there; the commands that build or train write it back with their overrides.
"""

import contextlib
import os

from sagan_tf import config as config_lib
from sagan_tf import files

CONFIG_FILE = "config.yaml"


class Workdir:
    def __init__(self, path):
        self.path = os.path.abspath(path)

    def join(self, *parts):
        return os.path.join(self.path, *parts)

    @property
    def config_path(self):
        return self.join(CONFIG_FILE)

    @property
    def data_dir(self):
        return self.join("data")

    @property
    def encoder_dir(self):
        return self.join("encoder")

    @property
    def gan_dir(self):
        return self.join("gan")

    @property
    def checkpoints_dir(self):
        return os.path.join(self.gan_dir, "checkpoints")

    @property
    def latest_generator(self):
        """The generator checkpoint that generate, evaluate and export use by default."""
        return os.path.join(self.checkpoints_dir, "generator-latest.keras")

    @property
    def trained_on_path(self):
        """Which run wrote gan/checkpoints/, and on which text encoder."""
        return os.path.join(self.gan_dir, "trained_on.json")

    def read_trained_on(self):
        """{"run": backup digest, "encoder_id": ...} of the GAN in the workdir, or None."""
        if not os.path.isfile(self.trained_on_path):
            return None
        return files.read_json(self.trained_on_path, "record of the GAN run", required=("run", "encoder_id"))

    @property
    def samples_dir(self):
        return self.join("samples")

    @property
    def logs_dir(self):
        return self.join("logs")

    @property
    def export_dir(self):
        return self.join("export")

    def ensure(self):
        os.makedirs(self.path, exist_ok=True)
        return self

    def resolve_config(self, config_file=None, overrides=(), record=True):
        """The config for a command: the named file, else the workdir's own,
        else the defaults; then `--set` overrides. With `record` (commands
        that build or train) it is saved back, so later commands and a
        resumed run see the settings the outputs were made with."""
        if config_file is None and os.path.isfile(self.config_path):
            config_file = self.config_path
        config = config_lib.load(config_file, overrides)
        if record:
            self.ensure()
            config.save(self.config_path)
        return config

    @contextlib.contextmanager
    def config_restored_on(self, failures):
        """Puts the saved config back when the block raises one of `failures`.

        A command refused for bad input must not leave its `--set` behind. An
        interruption (not among `failures`) keeps it: the resumed run needs it.
        """
        previous = None
        if os.path.isfile(self.config_path):
            with open(self.config_path, "rb") as f:
                previous = f.read()
        try:
            yield
        except failures:
            if previous is not None:
                with files.written_atomically(self.config_path) as scratch, open(scratch, "wb") as f:
                    f.write(previous)
            elif os.path.isfile(self.config_path):
                os.remove(self.config_path)
            raise

    def data_cache_dir(self, config):
        return config.data.cache_dir or self.data_dir
