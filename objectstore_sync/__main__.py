"""``python -m objectstore_sync ...`` is the ``objectstore`` command."""

import sys

from objectstore_sync._cli import main

sys.exit(main())
