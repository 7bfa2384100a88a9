"""``python -m regpipe_score`` is ``regpipe-score``."""

import sys

from .cli import main

sys.exit(main())
