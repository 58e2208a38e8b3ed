"""Labels of nearby points in the report's scatter plot do not overlap (checked on the
rendered text bounding boxes)."""

from __future__ import annotations

import itertools

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from petl.bench.labels import place_labels


def test_labels_of_close_points_do_not_overlap() -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    # Points as in the default benchmark: several runs with the same parameter count and
    # nearly the same forgetting.
    points = [(3e5, 0.40), (3e5, 0.41), (3e5, 0.405), (2.2e7, 0.5), (2.2e7, 0.49), (1e4, 0.1)]
    names = ["SeqLoRA", "LoRA+EWC", "LoRA+Replay", "SeqFT (full)", "Full+EWC", "BitFit"]
    ax.scatter(*zip(*points, strict=True))
    ax.set_xscale("log")
    fig.tight_layout()
    notes = place_labels(ax, points, names)
    renderer = fig.canvas.get_renderer()
    boxes = [n.get_window_extent(renderer) for n in notes]
    for (i, a), (j, b) in itertools.combinations(enumerate(boxes), 2):
        assert not a.overlaps(b), (names[i], names[j])
    # Without placement, the first three labels would overlap.
    plain = [
        ax.annotate(t, p, textcoords="offset points", xytext=(4, 4))
        for p, t in zip(points[:2], names[:2], strict=True)
    ]
    assert plain[0].get_window_extent(renderer).overlaps(plain[1].get_window_extent(renderer))
    plt.close(fig)
