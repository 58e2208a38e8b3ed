"""Tests of faults (a package: helpers are imported as `tests.faults.<module>`)."""
