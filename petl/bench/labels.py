"""Point labels that do not overlap: each label starts just above-right of its point and
is pushed down (in screen points) past every label already placed whose drawn bounding
box it would overlap. Placement uses the rendered text boxes, so it holds for any font."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

STEP = 3.0  # points moved per try
TRIES = 200


def place_labels(
    ax: Any, points: Sequence[tuple[float, float]], texts: Sequence[str], fontsize: int = 7
) -> list[Any]:
    """Annotates each point with its text (the axes' limits and scales must be final);
    returns the annotations, whose boxes do not overlap each other."""
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    boxes: list[Any] = []
    # Top to bottom, so that pushing a label down moves it away from those above.
    order = sorted(range(len(points)), key=lambda i: (-points[i][1], points[i][0]))
    out: list[Any] = [None] * len(points)
    for i in order:
        dy = 4.0
        note = ax.annotate(
            texts[i], points[i], textcoords="offset points", xytext=(4, dy), fontsize=fontsize
        )
        for _ in range(TRIES):
            box = note.get_window_extent(renderer).expanded(1.02, 1.1)
            if not any(box.overlaps(other) for other in boxes):
                break
            dy -= STEP
            note.set_position((4, dy))
        boxes.append(note.get_window_extent(renderer))
        out[i] = note
    return out
