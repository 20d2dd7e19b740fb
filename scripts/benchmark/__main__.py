"""``python -m benchmark COMMAND``: see ``benchmark.cli``."""

import sys

from benchmark.cli import main

sys.exit(main())
