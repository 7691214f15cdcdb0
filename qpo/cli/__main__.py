"""``python -m qpo.cli``: the same command line as the ``qpo`` console script."""
import sys

from qpo.cli import main

sys.exit(main())
