"""`python -m sagan_tf ...` is the `sagan-tf` command."""

import sys

from sagan_tf.cli import main

sys.exit(main())
