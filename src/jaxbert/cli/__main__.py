"""`python -m jaxbert.cli …` (what the tests and launch scripts run)."""

import sys

from jaxbert.cli import main

sys.exit(main())
