"""Exceptions petl raises for bad input: each message says what was wrong and how to fix it."""

from __future__ import annotations

from collections.abc import Iterable


class PetlError(Exception):
    """Base class of every error petl raises on purpose."""


class ConfigError(PetlError, ValueError):
    """An option, name or configuration value is not valid."""


class IncompatibleModelError(PetlError, ValueError):
    """A method or adapter cannot work with the given model."""


class DataError(PetlError, ValueError):
    """A task stream or dataset is empty, inconsistent or unsupported."""


class CheckpointError(PetlError, ValueError):
    """A checkpoint directory does not match the run, is damaged, or cannot be written."""


class TrainingError(PetlError, RuntimeError):
    """Training cannot go on soundly, e.g. the loss or a gradient is NaN or infinite."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Returns ' Did you mean X?' when a close match exists, else ''."""
    import difflib

    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def unknown_choice(kind: str, name: str, choices: Iterable[str]) -> ConfigError:
    """Builds the standard 'unknown X' error that lists the valid choices."""
    choices = sorted(choices)
    return ConfigError(
        f"Unknown {kind} {name!r}.{did_you_mean(name, choices)} Known {kind}s: {', '.join(choices)}."
    )
