"""Shared test fixtures live in ``tests/support/``; each module is a pytest plugin."""

pytest_plugins = [
    "support.hub",
    "support.lab",
    "support.browser",
    "support.github",
    "support.postgres",
    "support.notebooks",
    "support.images",
    "support.tap",
    "support.release",
    "support.s3",
]
