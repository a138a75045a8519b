"""``python -m neurosim ...``: the command line, also as torchrun's module (``torchrun -m neurosim train``)."""

import sys

from neurosim.cli import main

sys.exit(main())
