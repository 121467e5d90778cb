"""`python -m runner [overrides]`: run an experiment (see `runner.cli.main`)."""

from runner.cli.main import main

if __name__ == "__main__":
    main()
