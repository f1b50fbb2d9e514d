"""``python -m metarena``: the ``metarena`` command."""

import sys

from metarena.arenas.cli import main

sys.exit(main())
