"""Wall time of `petl --help` and each subcommand's help (best of N fresh interpreters).

    PYTHONPATH=$PWD python benchmarks/help_time.py [--repeat 5]

Prints which petl ran (`python -m` puts the current folder first on the path, before
PYTHONPATH: run from outside a checkout to time another one), then one line per command
and whether torch was imported; the helps should stay well under a second because
`import petl` and the CLI's argument parser import no torch."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

COMMANDS = [[], ["train"], ["bench"], ["report"]]
CHECK = (
    "import sys\nfrom petl.cli import main\ntry:\n    main(sys.argv[1:])\n"
    "except SystemExit:\n    pass\nprint('torch' in sys.modules, file=sys.stderr)"
)


def best_wall(argv: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "petl.cli", *argv], capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    where = subprocess.run(
        [sys.executable, "-c", "import petl; print(petl.__file__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    print(f"petl from {where}; best of {args.repeat} wall times")
    for sub in COMMANDS:
        argv = [*sub, "--help"]
        seconds = best_wall(argv, args.repeat)
        torch = subprocess.run(
            [sys.executable, "-c", CHECK, *argv], capture_output=True, text=True, check=True
        ).stderr.strip()
        print(f"petl {' '.join(argv):16s} {seconds:6.3f} s   torch imported: {torch}")


if __name__ == "__main__":
    main()
