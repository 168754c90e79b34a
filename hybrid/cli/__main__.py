"""``python -m hybrid.cli``: the same as the ``hybrid`` command."""

import sys

from hybrid.cli.main import main

sys.exit(main())
