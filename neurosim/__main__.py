"""``python -m neurosim ...``: the command line, also as torchrun's module (``torchrun -m neurosim train``)."""

import sys

from neurosim.cli import main

if __name__ == "__main__":  # not on import (the API reference imports every module)
    sys.exit(main())
