"""Tests of families (a package: helpers are imported as `tests.families.<module>`)."""
