"""General-ability drift in the `petl bench` report.

A run that measures general ability (petl/ability.py) leaves in its results

    results.info["ability"] = {measure name: [value of the base model before any training,
                                              value after task 1, ..., after task T]}

(for example a held-out language-modelling loss, or the exact match on tasks the model is
never tuned on). The report shows, per run, a row per task with each measure's value and
its drift from the base model (value after task i minus the base value: a loss that
grows, or a score that falls, is ability lost), in report.md, results.json (each run's
"ability") and plots/ability_drift.png. Definitions of the measures: docs/metrics.md.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from petl.errors import DataError


def ability_row(results: list[dict[str, Any]], tasks: int) -> dict[str, Any] | None:
    """`{measure: {"values": [...], "drift": [...], "values_std": [...]}}` of one run, the
    mean over its seeds (those that measured it); None when no seed measured anything.

    Raises:
        DataError: a measure whose list is not base + one value per task.
    """
    by_measure: dict[str, list[list[float]]] = {}
    for r in results:
        for name, values in (r.get("info", {}).get("ability") or {}).items():
            if not isinstance(values, list) or len(values) != tasks + 1:
                raise DataError(
                    f"results.info['ability'][{name!r}] must list {tasks + 1} values (the base "
                    f"model, then one after each of the {tasks} tasks), got {values!r}."
                )
            by_measure.setdefault(name, []).append([float(v) for v in values])
    if not by_measure:
        return None
    out = {}
    for name, runs in by_measure.items():
        values = np.array(runs, dtype=float)
        mean = values.mean(0)
        out[name] = {
            "values": mean.tolist(),
            "values_std": values.std(0).tolist(),
            "drift": (mean[1:] - mean[0]).tolist(),
            "seeds": len(runs),
        }
    return out


def section(rows: list[dict[str, Any]]) -> list[str]:
    """The "General-ability drift" section of report.md (nothing when no run measured it)."""
    measured = [r for r in rows if r.get("ability")]
    if not measured:
        return []
    out = [
        "## General-ability drift",
        "",
        "Each measure on the base model before any training (`base`) and after each task; "
        "drift = value after the task minus the base value (a loss that grows or a score "
        "that falls is general ability lost). Measures: docs/metrics.md"
        + (" (mean over seeds)." if any(len(r["seeds"]) > 1 for r in measured) else "."),
        "",
    ]
    for r in measured:
        measures = list(r["ability"])
        head = ["", *(h for m in measures for h in (m, f"drift {m}"))]
        T = len(r["ability"][measures[0]]["drift"])
        body = [["base", *(x for m in measures for x in (_f(r["ability"][m]["values"][0]), ""))]]
        for i in range(T):
            cells = []
            for m in measures:
                a = r["ability"][m]
                cells += [_f(a["values"][i + 1]), f"{a['drift'][i]:+.3f}"]
            body.append([f"after T{i + 1}", *cells])
        table = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
        out += [f"### {r['name']}", "", *table, *("| " + " | ".join(b) + " |" for b in body), ""]
    return out


def _f(value: float) -> str:
    return f"{value:.3f}"


def plot(rows: list[dict[str, Any]], path: str) -> str | None:
    """plots/ability_drift.png: one panel per measure, the drift of each run after every
    task (0 = the base model); None when no run measured general ability."""
    measured = [r for r in rows if r.get("ability")]
    if not measured:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measures = list(dict.fromkeys(m for r in measured for m in r["ability"]))
    fig, axes = plt.subplots(
        1, len(measures), figsize=(4.2 * len(measures), 3.4), squeeze=False, sharex=True
    )
    for ax, m in zip(axes.flat, measures, strict=True):
        for r in measured:
            if m in r["ability"]:
                drift = [0.0, *r["ability"][m]["drift"]]
                ax.plot(range(len(drift)), drift, marker="o", markersize=3, label=r["name"])
        T = max(len(r["ability"][m]["drift"]) for r in measured if m in r["ability"])
        ax.set_xticks(range(T + 1), ["base", *(f"T{i + 1}" for i in range(T))], fontsize=7)
        ax.axhline(0.0, color="gray", linewidth=0.8)
        ax.set_title(f"{m}: drift from the base model", fontsize=9)
        ax.grid(alpha=0.3)
    axes.flat[0].set_ylabel("value after the task minus base")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), fontsize=7)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
