"""Tests of cl (a package: helpers are imported as `tests.cl.<module>`)."""
