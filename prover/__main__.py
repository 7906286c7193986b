"""`python -m prover ...` runs the `prover` command."""

import sys

from prover.cli import main

sys.exit(main())
