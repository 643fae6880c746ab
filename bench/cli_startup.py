"""Start-up cost of one ``scimward`` command on two source trees (issue 13): CPU, wall, modules imported.

    git archive dbc2075 | tar -x -C /tmp/before
    .venv/bin/python bench/cli_startup.py --before /tmp/before/src -n 7 -- target list --database-url sqlite:////tmp/x.db

Runs the command alternately on each tree (this venv, the tree chosen by ``PYTHONPATH``) and prints
the median (and minimum) CPU of the child (user + sys) and wall, then ``len(sys.modules)`` after one
run on each (all / scimward's own), which the load does not change.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

SCIMWARD = str(Path(sys.executable).parent / "scimward")
AFTER = str(Path(__file__).resolve().parent.parent / "src")
COUNT = (
    "import sys; sys.argv = ['scimward', *sys.argv[1:]]\n"
    "from scimward.cli.main import app\n"
    "try:\n    app()\nexcept SystemExit:\n    pass\n"
    "print(len(sys.modules), sum(m.startswith('scimward') for m in sys.modules), file=sys.stderr)"
)


def one(src: str, command: list[str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": src}
    subprocess.run([SCIMWARD, *command], env=env, capture_output=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, wall


def modules(src: str, command: list[str]) -> str:
    env = {**os.environ, "PYTHONPATH": src}
    result = subprocess.run([sys.executable, "-c", COUNT, *command], env=env, capture_output=True, text=True)
    return " / ".join(result.stderr.split()[-2:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", required=True, help="the src/ folder of the tree to compare with")
    parser.add_argument("-n", type=int, default=7, help="runs on each tree")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = [c for c in args.command if c != "--"]
    trees = {"before": args.before, "after": AFTER}
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in trees}
    loads = []
    for _ in range(args.n):
        for name, src in trees.items():
            runs[name].append(one(src, command))
        loads.append(os.getloadavg()[0])
    print("| command | tree | CPU s, median (min) | wall s, median (min) | modules (all / scimward) |")
    for name, src in trees.items():
        cpu, wall = [r[0] for r in runs[name]], [r[1] for r in runs[name]]
        print(
            f"| `scimward {' '.join(command)}` | {name} | {statistics.median(cpu):.2f} ({min(cpu):.2f}) "
            f"| {statistics.median(wall):.2f} ({min(wall):.2f}) | {modules(src, command)} |"
        )
    print(f"load average during: {min(loads):.1f} to {max(loads):.1f}")


if __name__ == "__main__":
    main()
