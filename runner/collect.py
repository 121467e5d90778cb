"""`python -m runner.collect <multirun dir>`: merge the jobs of a multirun (see
`runner.cli.collect`)."""

import sys

from runner.cli.collect import main

if __name__ == "__main__":
    sys.exit(main())
