"""``python -m tgir ...`` (and ``torchrun --nproc_per_node=N -m tgir train ...``)."""

import sys

from tgir.cli import main

sys.exit(main())
