"""`pip install .` must work with pip's default build isolation and ship the UI files."""

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_wheel_builds_with_isolation_and_ships_templates_and_static(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--disable-pip-version-check",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [wheel] = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    package = REPO / "octoprint_tracking_queued"
    shipped = [
        p.relative_to(REPO).as_posix()
        for p in package.rglob("*")
        if p.is_file() and p.suffix in (".jinja2", ".js", ".css", ".py")
    ]
    assert shipped and set(shipped) <= set(names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[octoprint.plugin]" in text and "tracking_queued = octoprint_tracking_queued" in text
