"""Silencing the known-harmless messages that petl itself causes, only around the calls
that cause them (never globally, so a user's own warnings and logs are untouched):

- transformers' load report "classifier.weight | MISSING" when a sequence/token
  classifier is loaded from an encoder checkpoint: petl replaces that classifier by its
  own task heads, so the missing weights are never used;
- transformers' FutureWarning "`is_gradient_checkpointing` is deprecated", raised when
  peft inspects the model."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def quiet_petl_calls() -> Iterator[None]:
    """Inside: transformers logs at error level, shows no per-load progress bar ("Loading
    weights"), and the known FutureWarnings are ignored."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        try:
            yield
        finally:
            hf_logging.set_verbosity(level)
            if bars:
                hf_logging.enable_progress_bar()
