"""``python -m cmrlab ...`` is the ``cmrlab`` command (see :mod:`cmrlab.cli`)."""
import sys

from cmrlab.cli import main

sys.exit(main())
