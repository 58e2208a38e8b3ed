"""kill -9 at random points of a 3-task EWC + Replay run, then resume: every resumed run
must end with exactly the accuracy matrix and weights of the uninterrupted run.

A child process (forked from the parent, which imported torch and petl once) trains a tiny seeded BERT (tests/cl/cl_data.py) with LoRA, EWC and Replay
over 3 class-incremental tasks, checkpointing after every optimizer step. The run is cut
into "events": every optimizer step and every file operation of a checkpoint write (each
safetensors file, each hash, each rename or delete). For each kill point the child sends
itself SIGKILL at a random event (no cleanup, no `finally`: what a kill -9 or a power cut
leaves), then a fresh child resumes from the same folder; its matrix and a sha256 of all
its weights are compared with the uninterrupted run, bit for bit (same process, same CPU
kernels, same shapes: bit identity is the property).

    python benchmarks/kill9_resume.py                   # 20 points, seed 0
    python benchmarks/kill9_resume.py --points 3 --seed 1 --out /tmp/k.json

Writes JSON (every point: event, what was running, where the resume started, equal or not)
and prints a table; exit status 1 if any resumed run differs."""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_OUT = os.path.join(HERE, "results", "kill9_resume.json")


# ---- child: one (possibly killed) run -------------------------------------------------------
def child(checkpoint_dir: str, result: str, kill_at: int | None) -> None:
    import torch

    import petl
    from petl.training import checkpoint as ckpt
    from tests.cl.cl_data import make_bert, make_tokenizer, split_records

    torch.set_num_threads(1)
    events: list[str] = []

    def event(what: str) -> None:
        events.append(what)
        if kill_at is not None and len(events) == kill_at:
            with open(result + ".event", "w") as f:
                json.dump({"event": kill_at, "what": what}, f)
            os.kill(os.getpid(), signal.SIGKILL)

    def counted(name: str, fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            target = os.path.basename(str(args[-1] if name == "save_file" else args[0]))
            event(f"{name} {target}")
            out = fn(*args, **kwargs)
            event(f"after {name} {target}")
            return out

        return wrapper

    ckpt.save_file = counted("save_file", ckpt.save_file)
    ckpt.sha256_file = counted("sha256", ckpt.sha256_file)
    os.replace = counted("rename", os.replace)
    shutil.rmtree = counted("rmtree", shutil.rmtree)

    class Events(petl.Strategy):
        name = "events"

        def after_step(self, learner: Any) -> None:
            event(f"step {learner.global_step} (task {learner.task_index})")

    records = split_records([[0, 1], [2, 3], [4, 5]], n_train=24, n_test=12, seed=7)
    stream = petl.Stream.from_records(records, val_fraction=0)
    learner = petl.Learner(
        make_bert(seed=1),
        make_tokenizer(),
        method="lora",
        method_options={"r": 2},
        strategies=[petl.EWC(lam=50.0, fisher_samples=8), petl.Replay(memory=8), Events()],
        config=petl.TrainConfig(
            epochs=2, batch_size=8, lr=3e-2, seed=3, progress=False, checkpoint_every=1
        ),
    )
    results = learner.fit(stream, checkpoint_dir=checkpoint_dir)
    digest = hashlib.sha256()
    for name, param in sorted(learner.model.named_parameters()):
        digest.update(name.encode())
        digest.update(param.detach().cpu().contiguous().numpy().tobytes())
    with open(result, "w") as f:
        json.dump(
            {
                "accuracy": results.accuracy.tolist(),
                "initial": results.initial.tolist(),
                "weights_sha256": digest.hexdigest(),
                "events": len(events),
            },
            f,
        )


# ---- parent: the kill points ----------------------------------------------------------------
def start_child(checkpoint_dir: str, result: str, kill_at: int | None) -> int:
    """Forks a process for one run; returns its pid."""
    pid = os.fork()
    if pid == 0:  # the child: nothing of the parent's state but the imports
        code = 1
        try:
            with open(os.devnull, "w") as null:
                os.dup2(null.fileno(), 2)  # progress and warnings of the library
            child(checkpoint_dir, result, kill_at)
            code = 0
        finally:
            os._exit(code)
    return pid


def exit_code(status: int) -> int:
    """A wait status as an exit code; -9 when SIGKILL ended the process."""
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def run_child(checkpoint_dir: str, result: str, kill_at: int | None) -> int:
    _, status = os.waitpid(start_child(checkpoint_dir, result, kill_at), 0)
    return exit_code(status)


def checkpoint_state(checkpoint_dir: str) -> str:
    """Which checkpoint a resume will find (as `petl.training.checkpoint.read` picks it)."""
    from petl.training import checkpoint as ckpt

    for name in (ckpt.LIVE, ckpt.NEW, ckpt.OLD):
        folder = os.path.join(checkpoint_dir, name)
        if os.path.isdir(folder) and ckpt.verify(folder) is None:
            with open(os.path.join(folder, "state.json")) as f:
                state = json.load(f)
            return f"{name}: step {state['global_step']}, task {state['task']}, {state['phase']}"
    return "none (starts afresh)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=DEFAULT_OUT)
    parser.add_argument("--jobs", type=int, default=1, help="kill points run at once")
    args = parser.parse_args()
    sys.path.insert(0, ROOT)
    import torch
    from tqdm.auto import tqdm

    import petl  # noqa: F401
    import tests.cl.cl_data  # noqa: F401  (imported once, before the forks)

    torch.set_num_threads(1)

    start = time.perf_counter()
    work = tempfile.mkdtemp(prefix="petl-kill9-")
    try:
        ref_file = os.path.join(work, "reference.json")
        if run_child(os.path.join(work, "reference"), ref_file, None) != 0:
            raise SystemExit("the uninterrupted run failed")
        with open(ref_file) as f:
            reference = json.load(f)
        rng = random.Random(args.seed)
        # one random event in each of `points` equal stretches of the run: all tasks covered
        n = reference["events"]
        edges = [1 + n * i // args.points for i in range(args.points + 1)]
        points = [rng.randrange(lo, max(hi, lo + 1)) for lo, hi in itertools.pairwise(edges)]
        rows: dict[int, dict[str, Any]] = {}
        # Each point: a run killed at its event, then a fresh run resuming from its folder.
        # Up to --jobs processes at once, forked from this (single-threaded) parent.
        todo, running = list(enumerate(points)), dict[int, tuple[int, str]]()
        bar = tqdm(total=len(points), desc="kill -9 points")
        while todo or running:
            while todo and len(running) < args.jobs:
                k, kill_at = todo.pop(0)
                folder, result = os.path.join(work, f"run{k}"), os.path.join(work, f"run{k}.json")
                running[start_child(folder, result, kill_at)] = (k, "killed")
            pid, status = os.wait()
            k, stage = running.pop(pid)
            folder, result = os.path.join(work, f"run{k}"), os.path.join(work, f"run{k}.json")
            if stage == "killed":
                with open(result + ".event") as f:
                    killed = json.load(f)["what"]
                rows[k] = {
                    "event": points[k],
                    "killed_during": killed,
                    "kill_returncode": exit_code(status),
                    "resumed_from": checkpoint_state(folder),
                }
                running[start_child(folder, result, None)] = (k, "resumed")
                continue
            with open(result) as f:
                got = json.load(f)
            rows[k].update(
                resume_returncode=exit_code(status),
                same_matrix=got["accuracy"] == reference["accuracy"]
                and got["initial"] == reference["initial"],
                same_weights=got["weights_sha256"] == reference["weights_sha256"],
            )
            bar.update(1)
        bar.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ordered = [rows[k] for k in sorted(rows)]
    ok = len(ordered) == args.points and all(
        r["same_matrix"] and r["same_weights"] and r["kill_returncode"] == -signal.SIGKILL
        for r in ordered
    )
    report = {
        "command": "python " + " ".join([os.path.relpath(__file__, ROOT), *sys.argv[1:]]),
        "run": "3 tasks x 24 examples, tiny BERT + LoRA r=2, EWC + Replay, 2 epochs, batch 8, "
        "checkpoint_every=1",
        "events_in_run": reference["events"],
        "reference_accuracy": reference["accuracy"],
        "points": ordered,
        "all_equal": ok,
        "wall_time_s": round(time.perf_counter() - start, 1),
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
    for r in ordered:
        print(
            f"event {r['event']:4d} killed during {r['killed_during']:38s} rc {r['kill_returncode']}"
            f" -> resumed from {r['resumed_from']:40s} same matrix {r['same_matrix']}, "
            f"same weights {r['same_weights']}"
        )
    print(f"all {len(ordered)} resumed runs equal to the uninterrupted run: {ok} ({args.out})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
