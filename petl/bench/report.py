"""The benchmark report: results.json, report.md and PNG plots, rendered from the cell
files of an output folder (so `petl report DIR` can redo it at any time, also for a
benchmark that is still running or was interrupted).

Per run (mean and std over seeds): average accuracy, forgetting, BWT, FWT, plasticity
(the diagonal: accuracy on each task right after training it), trainable parameters,
wall time and peak memory. Plots: accuracy-matrix heatmaps, the accuracy of each task
over the stream, and forgetting against trainable parameters."""

from __future__ import annotations

import json
import os
import time
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np

from petl import metrics
from petl.bench.drift import ability_row
from petl.bench.drift import section as drift_section
from petl.bench.folder import CELLS, INVOCATIONS, environment, read_record
from petl.bench.plots import PLOTS, short_count

# metric of a family's score -> (short, long) name in tables and text
METRIC_NAMES = {
    "accuracy": ("acc", "accuracy"),
    "f1": ("F1", "entity F1"),
    "exact_match": ("EM", "exact match"),
}
METRICS = ("average_accuracy", "forgetting", "bwt", "fwt", "plasticity")


def load_cells(out: str) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """(config record, finished cell records in config order, failed cells) of a folder."""

    saved = read_record(out)  # refuses a folder petl bench did not write, before any write
    order = {k: i for i, k in enumerate(saved.get("cells", []))}
    cells, failed = [], []
    folder = os.path.join(out, CELLS)
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        with open(os.path.join(folder, name)) as f:
            if name.endswith(".failed.json"):
                failed.append(json.load(f))
            elif name.endswith(".json"):
                cells.append(json.load(f))
    cells.sort(key=lambda c: order.get(c["key"], len(order)))
    return saved, cells, failed


def _mean_std(values: list[float | None]) -> tuple[float | None, float | None]:
    vals = [v for v in values if v is not None]
    if not vals:
        return None, None
    return metrics.tidy(float(np.mean(vals))), metrics.tidy(float(np.std(vals)))


def aggregate(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per run: metrics as mean and std over its seeds, mean matrices, costs."""
    runs: dict[str, list[dict[str, Any]]] = {}
    for c in cells:
        runs.setdefault(c["run"]["name"], []).append(c)
    rows = []
    for name, group in runs.items():
        results = [g["results"] for g in group]
        matrices = np.array([r["accuracy"] for r in results], dtype=float)
        initial = np.array([r["initial"] for r in results], dtype=float)
        run = group[0]["run"]
        row: dict[str, Any] = {
            "name": name,
            "method": run["method"] or "none",
            "strategies": [s[0] for s in run["strategies"]] or ["naive"],
            "seeds": [g["seed"] for g in group],
            "accuracy": matrices.mean(0).tolist(),
            "accuracy_std": matrices.std(0).tolist(),
            "initial": initial.mean(0).tolist(),
            "diagonal": np.diagonal(matrices, axis1=1, axis2=2).mean(0).tolist(),
            "final": matrices[:, -1, :].mean(0).tolist(),
            "metric": (results[0].get("metric") or ["accuracy"])[0],
            "trainable_params": results[0]["info"].get("trainable_params"),
            "total_params": results[0]["info"].get("total_params"),
        }
        for metric in METRICS:
            row[metric], row[metric + "_std"] = _mean_std(
                [r["summary"].get(metric) for r in results]
            )
        row["wall_time_s"], row["wall_time_s_std"] = _mean_std(
            [r["info"].get("wall_time_s") for r in results]
        )
        row["cpu_time_s"], _ = _mean_std([r["info"].get("cpu_time_s") for r in results])
        row["peak_rss_mb"], _ = _mean_std([r["info"].get("peak_rss_mb") for r in results])
        for key in ("optimizer_steps", "head_passes_per_task", "state_floats"):
            row[key] = results[0]["info"].get(key)
        if row["optimizer_steps"] == 0:
            # A statistic head over a frozen backbone: the LoRA (or head) that requires
            # grad was never stepped, so nothing was trained.
            row["trainable_params"] = 0
        ability = ability_row(results, len(row["accuracy"]))
        if ability is not None:
            row["ability"] = ability
        rows.append(row)
    return rows


def _fmt(value: float | None, std: float | None = None, digits: int = 3, seeds: int = 1) -> str:
    if value is None:
        return "-"
    text = figure(value, digits)
    return text + (f"±{figure(std, digits)}" if seeds > 1 and std is not None else "")


def figure(value: float, digits: int = 3) -> str:
    """`value` to `digits` places as a reader rounds its decimal form: a tie such as 0.2875
    (115 of 400) shows 0.288, though its nearest float lies below it and f"{x:.3f}" gives
    0.287."""
    if not np.isfinite(value):
        return f"{value:.{digits}f}"
    return str(Decimal(repr(value)).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))


def _load(values: list[float] | None) -> str:
    return "/".join(f"{v:.1f}" for v in values) if values else "?"


def score_name(rows: list[dict[str, Any]], long: bool = False) -> str:
    """What the matrices hold: "accuracy" (classification), "entity F1" (tokens), "exact
    match" (generation); short: acc, F1, EM."""
    metrics = {r.get("metric", "accuracy") for r in rows} or {"accuracy"}
    names = [METRIC_NAMES.get(m, (m, m))[long] for m in sorted(metrics)]
    return " / ".join(names)


def table_rows(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    head = [
        "run",
        f"avg {score_name(rows)}",
        "forgetting",
        "BWT",
        "diagonal",
        "trainable",
        "wall s",
        "cpu s",
        "peak MB",
        "steps",
        "head fwd",
        "state",
    ]
    body = []
    for r in rows:
        n = len(r["seeds"])
        body.append(
            [
                r["name"],
                _fmt(r["average_accuracy"], r["average_accuracy_std"], seeds=n),
                _fmt(r["forgetting"], r["forgetting_std"], seeds=n),
                _fmt(r["bwt"], r["bwt_std"], seeds=n),
                _fmt(r["plasticity"], r["plasticity_std"], seeds=n),
                short_count(r["trainable_params"]),
                _fmt(r["wall_time_s"], digits=0),
                _fmt(r.get("cpu_time_s"), digits=0),
                _fmt(r["peak_rss_mb"], digits=0),
                short_count(r.get("optimizer_steps")),
                f"{r['head_passes_per_task']}/task" if r.get("head_passes_per_task") else "-",
                short_count(r.get("state_floats")),
            ]
        )
    return head, body


def format_table(rows: list[dict[str, Any]]) -> str:
    """The compact results table `petl bench` prints."""
    head, body = table_rows(rows)
    widths = [max(len(x) for x in col) for col in zip(head, *body, strict=True)]
    lines = [
        "  ".join(
            h.ljust(w) if i == 0 else h.rjust(w)
            for i, (h, w) in enumerate(zip(head, widths, strict=True))
        )
    ]
    lines.append("  ".join("-" * w for w in widths))
    for cells in body:
        lines.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            )
        )
    return "\n".join(lines)


def _md_table(head: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def _chance_section(rows: list[dict[str, Any]], stream: dict[str, Any] | None) -> list[str]:
    """A "Warnings" section listing tasks whose diagonal is near chance (never learned)."""
    from petl.chance import chance_warnings

    if not stream:
        return []
    names = [t["name"] for t in stream["tasks"]]
    labels = [t["labels"] for t in stream["tasks"]]
    metrics = ["accuracy" if stream.get("family", "classification") == "classification" else ""]
    found = [
        w
        for r in rows
        for w in chance_warnings(names, r["diagonal"], labels, metrics * len(names), r["name"])
    ]
    return ["## Warnings", "", *(f"- {w}" for w in found), ""] if found else []


def markdown(report: dict[str, Any]) -> str:
    """The Markdown report (report.md)."""
    rows, stream, env = report["runs"], report["stream"], report["environment"]
    names = [t["name"] for t in stream["tasks"]] if stream else []
    short = [f"T{i + 1}" for i in range(len(names))]
    cfg = report["config"]
    out = [f"# petl bench: {report['name']}", ""]
    if cfg.get("description"):
        out += [cfg["description"].strip(), ""]
    out += [
        f"- Command: `{report['command']}`",
        f"- Cells finished: {report['cells_finished']} of {report['cells_total']}"
        + (f" ({len(report['failed'])} failed)" if report["failed"] else ""),
        f"- Sum of cell wall times: {report['total_wall_time_s']:.0f} s; "
        f"{cfg.get('workers', 1)} worker(s) x {cfg.get('num_threads', 1)} torch thread(s)",
        *(
            f"- `{i['command']}` ({i['cells_run']} cells): {i['wall_time_s']:.0f} s wall, "
            f"{i['cpu_time_s']:.0f} s CPU on {i['cpu_count']} CPUs, load average "
            f"{_load(i['loadavg_start'])} before, {_load(i['loadavg_end'])} after"
            for i in report["invocations"]
        ),
        f"- Model: `{cfg.get('model', {}).get('path', 'minilm')}`; seeds {report['seeds']}",
        f"- Machine: {env.get('platform')}, {env.get('cpu_count')} CPUs; "
        + ", ".join(f"{k} {v}" for k, v in env.get("versions", {}).items() if v),
        f"- Rendered: {report['rendered_at']}",
        "",
    ]
    if stream:
        out += [f"## Stream ({stream['scenario']}-incremental, {len(names)} tasks)", ""]
        out += [
            _md_table(
                ["", "task", "labels", "train", "test"],
                [
                    [s, t["name"], ", ".join(t["labels"]), str(t["train"]), str(t["test"])]
                    for s, t in zip(short, stream["tasks"], strict=True)
                ],
            ),
            "",
        ]
    if not rows:
        return "\n".join([*out, "No cell has finished yet."])
    head, body = table_rows(rows)
    out += [
        "## Results",
        "",
        *(
            [
                f"Every score is {score_name(rows, long=True)}, the task family's own score, "
                "in [0, 1]; 'accuracy' below means that score.",
                "",
            ]
            if score_name(rows) != "acc"
            else []
        ),
        f"avg {score_name(rows)}: mean accuracy over all tasks after the last one; forgetting: best earlier "
        "accuracy minus final, averaged over all but the last task; BWT: final minus "
        "just-trained accuracy; diagonal: mean accuracy on each task right after training "
        "it (plasticity); trainable: parameters the optimizer updates (0 when the run takes "
        "no optimizer step, e.g. a statistic head on a frozen backbone); wall s: "
        "wall time of the cell; cpu s: CPU time of the cell's process (the steadier figure "
        "on a shared machine); peak MB: peak resident memory of the cell's process "
        "(libraries included); steps: optimizer steps of the whole run; head fwd: forward "
        "passes over each task's training rows to update a statistic head (NCM, FeCAM, "
        "RanPAC, APER); state: floats such a head keeps, whatever the number of examples. "
        "See docs/metrics.md.",
        "",
        _md_table(
            ["run", "method", "strategies", *head[1:]],
            [
                [b[0], r["method"], "+".join(r["strategies"]), *b[1:]]
                for r, b in zip(rows, body, strict=True)
            ],
        ),
        "",
    ]
    out += _chance_section(rows, stream)
    out += [
        "## Accuracy right after each task (diagonal)",
        "",
        _md_table(
            ["run", *short], [[r["name"], *(figure(v) for v in r["diagonal"])] for r in rows]
        ),
        "",
        "## Final accuracy on each task",
        "",
        _md_table(["run", *short], [[r["name"], *(figure(v) for v in r["final"])] for r in rows]),
        "",
    ]
    out += drift_section(rows)
    out += ["## Plots", ""]
    for key, title in (
        ("accuracy_matrices", "Accuracy matrices"),
        ("task_accuracy", "Accuracy of each task over the stream"),
        ("forgetting_vs_params", "Forgetting against trainable parameters"),
        ("ability_drift", "General-ability drift from the base model"),
    ):
        if key in report["plots"]:
            out += [f"![{title}](plots/{PLOTS[key]})", ""]
    out += [
        "## Accuracy matrices",
        "",
        "Row `after Ti` = evaluation after training task i; column Tj = task j; "
        "`before` = before any training"
        + (" (mean over seeds)." if len(report["seeds"]) > 1 else "."),
        "",
    ]
    for r in rows:
        body = [["before", *(figure(v) for v in r["initial"])]]
        body += [
            [f"after {s}", *(figure(v) for v in row)]
            for s, row in zip(short, r["accuracy"], strict=True)
        ]
        out += [f"### {r['name']}", "", _md_table(["", *short], body), ""]
    if report["failed"]:
        out += (
            ["## Failed cells", ""]
            + [f"- {f['run']} seed {f['seed']}: {f['error']}" for f in report["failed"]]
            + [""]
        )
    return "\n".join(out)


def build_report(out: str) -> dict[str, Any]:
    """The report dict of an output folder (what results.json holds)."""
    saved, cells, failed = load_cells(out)
    config = saved["config"]
    rows = aggregate(cells)
    seeds = sorted({c["seed"] for c in cells})
    stream = cells[0]["results"]["info"].get("stream") if cells else None
    env = cells[-1]["environment"] if cells else environment(config.get("num_threads", 1))
    invocations = []
    if os.path.exists(os.path.join(out, INVOCATIONS)):
        with open(os.path.join(out, INVOCATIONS)) as f:
            invocations = json.load(f)
    return {
        "name": config.get("name", "bench"),
        "command": saved.get("command", "petl bench"),
        "config": config,
        "environment": env,
        "stream": stream,
        "seeds": seeds,
        "cells_total": len(saved.get("cells", [])),
        "cells_finished": len(cells),
        "total_wall_time_s": float(
            sum(c["results"]["info"].get("wall_time_s", 0.0) for c in cells)
        ),
        "rendered_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "invocations": invocations,
        "runs": rows,
        "failed": failed,
        "plots": {},
        "cells": [
            {
                "key": c["key"],
                "run": c["run"],
                "seed": c["seed"],
                "results": c["results"],
                "environment": c["environment"],
            }
            for c in cells
        ],
    }


def write_report(out: str) -> dict[str, Any]:
    """Renders results.json, report.md and plots/*.png of an output folder."""
    from petl.bench.plots import plots

    report = build_report(out)
    paths = plots(report, os.path.join(out, "plots"))
    report["plots"] = {k: os.path.relpath(v, out) for k, v in paths.items()}
    with open(os.path.join(out, "results.json.tmp"), "w") as f:
        json.dump(report, f, indent=2)
    os.replace(os.path.join(out, "results.json.tmp"), os.path.join(out, "results.json"))
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write(markdown(report) + "\n")
    return report
