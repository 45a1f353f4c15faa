"""``python -m csfmodel`` runs the command-line interface."""

import sys

from csfmodel.cli import main

sys.exit(main())
