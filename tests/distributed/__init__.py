"""Tests of distributed (a package: helpers are imported as `tests.distributed.<module>`)."""
