"""Subcommands of `sagan-tf`; importing this package registers them all."""

from sagan_tf.commands import data  # noqa: F401
from sagan_tf.commands import encoder  # noqa: F401
from sagan_tf.commands import gan  # noqa: F401
from sagan_tf.commands import export  # noqa: F401
from sagan_tf.commands import evaluate  # noqa: F401
from sagan_tf.commands import bench  # noqa: F401
