"""``python -m tgir.cli ...``, the same as ``tgir ...``."""

import sys

from tgir.cli import main

sys.exit(main())
