"""Tests of integrations (a package: helpers are imported as `tests.integrations.<module>`)."""
