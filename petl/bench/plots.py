"""The PNG plots of a `petl bench` report: accuracy-matrix heatmaps, the score of each
task over the stream, forgetting against trainable parameters and, when the runs measured
it, the general-ability drift of each run after every task."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

PLOTS = {
    "accuracy_matrices": "accuracy_matrices.png",
    "task_accuracy": "task_accuracy.png",
    "forgetting_vs_params": "forgetting_vs_params.png",
    "ability_drift": "ability_drift.png",
}


def short_count(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, size in (("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.{0 if n >= 100 * size else 1}f}{unit}"
    return str(n)


def plots(report: dict[str, Any], folder: str) -> dict[str, str]:
    """Writes the PNG plots; returns {plot name: file path}."""
    rows = report["runs"]
    if not rows:
        return {}
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    os.makedirs(folder, exist_ok=True)
    T = len(rows[0]["accuracy"])
    short = [f"T{i + 1}" for i in range(T)]
    names = [t["name"] for t in report["stream"]["tasks"]] if report.get("stream") else short
    legend = "   ".join(f"{s} = {n}" for s, n in zip(short, names, strict=True))
    paths = {}
    ncols = min(4, len(rows))
    nrows = (len(rows) + ncols - 1) // ncols

    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 3.0 * nrows + 0.6), squeeze=False)
    for ax, r in zip(axes.flat, rows, strict=False):
        m = np.array(r["accuracy"])
        ax.imshow(m, vmin=0, vmax=1, cmap="viridis")
        for i in range(T):
            for j in range(T):
                ax.text(
                    j,
                    i,
                    f"{m[i, j]:.2f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if m[i, j] < 0.6 else "black",
                )
        ax.set_xticks(range(T), short, fontsize=7)
        ax.set_yticks(range(T), [f"after {s}" for s in short], fontsize=7)
        ax.set_title(r["name"], fontsize=9)
    for ax in list(axes.flat)[len(rows) :]:
        ax.axis("off")
    fig.suptitle(
        f"Accuracy matrices (row: after training task i; column: task j)\n{legend}", fontsize=8
    )
    fig.tight_layout()
    paths["accuracy_matrices"] = os.path.join(folder, PLOTS["accuracy_matrices"])
    fig.savefig(paths["accuracy_matrices"], dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(
        nrows, ncols, figsize=(3.2 * ncols, 2.8 * nrows + 0.8), squeeze=False, sharey=True
    )
    for ax, r in zip(axes.flat, rows, strict=False):
        m = np.array(r["accuracy"])
        for j in range(T):
            ax.plot(range(j + 1, T + 1), m[j:, j], marker="o", markersize=3, label=short[j])
        ax.set_xticks(range(1, T + 1), short, fontsize=7)
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(r["name"], fontsize=9)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(rows) :]:
        ax.axis("off")
    axes.flat[0].set_ylabel("accuracy")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=T, fontsize=7)
    fig.suptitle(f"Accuracy of each task after training tasks 1..T\n{legend}", fontsize=8)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    paths["task_accuracy"] = os.path.join(folder, PLOTS["task_accuracy"])
    fig.savefig(paths["task_accuracy"], dpi=110)
    plt.close(fig)

    usable = [r for r in rows if r["trainable_params"] and r["forgetting"] is not None]
    if usable:
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        x = [r["trainable_params"] for r in usable]
        y = [r["forgetting"] for r in usable]
        err = [r["forgetting_std"] or 0.0 for r in usable]
        acc = [r["average_accuracy"] for r in usable]
        ax.errorbar(x, y, yerr=err, fmt="none", ecolor="gray", alpha=0.6)
        points = ax.scatter(x, y, c=acc, cmap="viridis", vmin=0, vmax=1, s=50, zorder=3)
        point_names: dict[tuple[float, float], list[str]] = {}
        for r, xi, yi in zip(usable, x, y, strict=True):  # one label per point, point_names joined
            point_names.setdefault((xi, round(yi, 3)), []).append(r["name"])
        ax.set_xscale("log")
        ax.set_xlim(min(x) / 2, max(x) * 6)  # room for the labels of the rightmost points
        ax.xaxis.set_major_formatter(
            matplotlib.ticker.FuncFormatter(lambda v, _: short_count(int(v)))
        )
        ax.set_xlabel("trainable parameters (log scale)")
        ax.set_ylabel("average forgetting (lower is better)")
        ax.grid(alpha=0.3)
        fig.colorbar(points, ax=ax, label="final average accuracy")
        ax.set_title("Forgetting against trainable parameters", fontsize=9)
        fig.tight_layout()
        from petl.bench.labels import place_labels

        groups = list(point_names.items())  # after the layout: labels placed in final pixels
        place_labels(ax, [p for p, _ in groups], [", ".join(g) for _, g in groups])
        paths["forgetting_vs_params"] = os.path.join(folder, PLOTS["forgetting_vs_params"])
        fig.savefig(paths["forgetting_vs_params"], dpi=110)
        plt.close(fig)
    from petl.bench.drift import plot as drift_plot

    if drift_plot(rows, os.path.join(folder, PLOTS["ability_drift"])):
        paths["ability_drift"] = os.path.join(folder, PLOTS["ability_drift"])
    return paths
