"""Progress bars of petl's long passes (training, evaluation, EWC's Fisher pass): shown on
the main process when `TrainConfig.progress` is on and stderr is a terminal. Redirected to
a file or a pipe, no bar is drawn, so logs hold no carriage returns or escape codes."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any


def disabled(learner: Any) -> bool | None:
    """tqdm's `disable`: True when off; None (tqdm: off unless a terminal) when on."""
    on = learner.config.progress and learner.accelerator.is_main_process
    return None if on else True


def bar(learner: Any, iterable: Iterable[Any] | None = None, **kwargs: Any) -> Any:
    """A tqdm bar over `iterable` (or with `total=`) that follows `disabled(learner)`."""
    from tqdm.auto import tqdm

    kwargs.setdefault("leave", False)
    kwargs.setdefault("file", sys.stderr)
    return tqdm(iterable, disable=disabled(learner), **kwargs)
