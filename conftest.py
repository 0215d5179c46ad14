"""Root conftest: the shared fixtures of tests/ and of each plugin's own tests live in tests/fixtures.py."""

pytest_plugins = ["tests.fixtures"]
