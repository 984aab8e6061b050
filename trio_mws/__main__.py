"""``python -m trio_mws``: see :mod:`trio_mws.cli`."""

import sys

from .cli import main

sys.exit(main())
