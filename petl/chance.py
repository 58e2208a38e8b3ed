"""Warnings for tasks that were never learned: a diagonal score (right after training the
task) at or near chance level makes that task's forgetting and BWT meaningless (nothing
was learned, so nothing can be forgotten), which a bare "forgetting 0.000" hides."""

from __future__ import annotations

from collections.abc import Sequence

# A diagonal below chance + this margin (of the distance from chance to 1) is "near chance".
MARGIN = 0.1


def chance_level(labels: Sequence[str], metric: str) -> float | None:
    """Accuracy of guessing among a task's labels; None for metrics without a simple
    chance level (entity F1, exact match of free text)."""
    return 1.0 / len(labels) if metric == "accuracy" and labels else None


def chance_warnings(
    names: Sequence[str],
    diagonal: Sequence[float],
    labels: Sequence[Sequence[str]],
    metrics: Sequence[str],
    run: str = "",
) -> list[str]:
    """One sentence per task whose score right after training it is near chance."""
    out = []
    for name, score, task_labels, metric in zip(names, diagonal, labels, metrics, strict=True):
        chance = chance_level(task_labels, metric)
        if chance is None or score > chance + MARGIN * (1 - chance):
            continue
        who = f"{run}: " if run else ""
        out.append(
            f"{who}task {name!r} scored {score:.3f} right after training on it, near chance "
            f"({chance:.3f} for {len(task_labels)} labels): it was not learned, so its "
            "forgetting says nothing. Raise the learning rate or epochs "
            "(see docs/troubleshooting.md)."
        )
    return out
