"""Subcommands of `sagan-tf`; importing this package registers them all."""

from sagan_tf.commands import data  # noqa: F401
