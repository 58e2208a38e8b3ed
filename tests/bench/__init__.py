"""Tests of bench (a package: helpers are imported as `tests.bench.<module>`)."""
