"""`Results`: what a continual-learning run measured, as arrays, a summary, JSON and plots."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from petl import metrics


@dataclass
class Results:
    """Scores of a run over a stream of T tasks.

    Attributes:
        task_names: The tasks, in training order.
        accuracy: T x T array; row i = after training task i, column j = task j. Each
            column holds its task's own score in [0, 1] (named in `metric`).
        initial: Scores of every task before any training (row b of forward transfer).
        metric: Name of the score in each column: "accuracy" (classification), "f1"
            (entity-level micro F1, token tasks), "exact_match" (generative tasks). The
            summary's "average_accuracy", "forgetting", ... are the same formulas over
            these scores.
        per_class: Final per-class accuracy of each task (per-type F1 for token tasks,
            exact match per gold answer for generative tasks).
        info: Run facts: scenario, method, strategies, trainable parameters, wall time,
            peak memory, library versions, configuration echo.
    """

    task_names: list[str]
    accuracy: np.ndarray
    initial: np.ndarray
    metric: list[str] = field(default_factory=list)
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Average accuracy, forgetting, BWT, FWT, plasticity, ... (see petl.metrics)."""
        return metrics.summarize(self.accuracy, self.initial)

    def warnings(self) -> list[str]:
        """Tasks whose score right after training them is near chance (never learned;
        their forgetting means nothing). See petl.chance."""
        from petl.chance import chance_warnings

        tasks = self.info.get("stream", {}).get("tasks", [])
        if len(tasks) != len(self.task_names) or not len(self.accuracy):
            return []
        diagonal = [float(self.accuracy[i, i]) for i in range(len(self.accuracy))]
        n = len(diagonal)
        metric = self.metric or ["accuracy"] * len(tasks)
        return chance_warnings(
            self.task_names[:n], diagonal, [t["labels"] for t in tasks][:n], metric[:n]
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "task_names": self.task_names,
            "accuracy": self.accuracy.tolist(),
            "initial": self.initial.tolist(),
            "metric": self.metric,
            "per_class": self.per_class,
            "summary": self.summary(),
            "info": self.info,
        }

    def save(self, path: str) -> None:
        import os

        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w") as f:
            json.dump(self.to_dict(), f, indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Results:
        return cls(
            list(data["task_names"]),
            np.asarray(data["accuracy"], dtype=float),
            np.asarray(data["initial"], dtype=float),
            list(data.get("metric", [])),
            dict(data.get("per_class", {})),
            dict(data.get("info", {})),
        )

    @classmethod
    def load(cls, path: str) -> Results:
        with open(path) as f:
            return cls.from_dict(json.load(f))

    def table(self) -> str:
        """The accuracy matrix as a Markdown table (columns name their metric when it is
        not accuracy everywhere)."""
        names = list(self.task_names)
        if self.metric and set(self.metric) != {"accuracy"}:
            names = [f"{n} ({m})" for n, m in zip(names, self.metric, strict=True)]
        head = "| after \\ on | " + " | ".join(names) + " |"
        rule = "|---" * (len(self.task_names) + 1) + "|"
        rows = ["| (before) | " + " | ".join(f"{v:.3f}" for v in self.initial) + " |"]
        rows += [
            f"| {name} | " + " | ".join(f"{v:.3f}" for v in row) + " |"
            for name, row in zip(self.task_names, self.accuracy, strict=True)
        ]
        return "\n".join([head, rule, *rows])
