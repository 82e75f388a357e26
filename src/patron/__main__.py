"""``python -m patron`` runs the command line."""

import sys

from patron.cli import main

sys.exit(main())
