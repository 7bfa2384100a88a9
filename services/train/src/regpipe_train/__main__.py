"""``python -m regpipe_train`` is ``regpipe-train``."""

import sys

from .cli import main

sys.exit(main())
