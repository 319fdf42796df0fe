"""/api/version latency during a 10,000-event storm against idle, on a real OctoPrint.

A measurement rather than a pass/fail: runs the storm scenario and prints its figures
(also RSS growth, queue size, drops).  Repeat with --runs N to see the spread.

    .venv/bin/python bench/storm_latency.py [--runs N]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    for run in range(args.runs):
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-s",
                "-p",
                "no:cacheprovider",
                "tests/integration/test_faults_storm.py",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        figures = re.findall(r"^storm: .*$", result.stdout, re.M)
        print(f"run {run + 1}: " + (figures[0] if figures else f"no figures (exit {result.returncode})"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
