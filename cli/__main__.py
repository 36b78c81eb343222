"""``python -m cli``: the same as ``lifecycle``."""

import sys

from cli import main

sys.exit(main())
