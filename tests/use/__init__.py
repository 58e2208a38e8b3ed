"""Tests of use (a package: helpers are imported as `tests.use.<module>`)."""
