"""How the report writes figures: summaries over seeds read as the exact fractions of
counts (JSON), and the tables round a tie half up from that decimal value, whatever side
of it the nearest float lies."""

from __future__ import annotations

import pytest

from petl.bench.report import _fmt, _mean_std


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0.8625, "0.863"),  # 345 / 400: the nearest float lies above the tie
        (0.2875, "0.288"),  # 115 / 400: ... and below it (f"{x:.3f}" gives 0.287)
        (0.8074999, "0.807"),
        (-0.0405, "-0.041"),
        (0.0, "0.000"),
        (417.5, "418"),
    ],
)
def test_table_figures_round_ties_half_up(value, shown):
    assert _fmt(value, digits=0 if value > 1 else 3) == shown


def test_means_over_seeds_drop_float_noise():
    mean, std = _mean_std([0.05000000000000004, 0.04999999999999999])
    assert mean == 0.05
    assert std == 0.0
    assert _mean_std([None, None]) == (None, None)
    assert _fmt(0.88, 0.0171, seeds=5) == "0.880±0.017"
