"""The suite's fixtures live in tests/helpers/fixtures.py (shared, some per session)."""

pytest_plugins = ["tests.helpers.fixtures"]
