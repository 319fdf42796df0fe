"""`pip install .` must work with pip's default build isolation and ship everything the plugin needs.

The wheel is built the way a user's pip builds the plugin manager's archive: isolated, from
pyproject.toml alone. Then it is installed alone into a new virtualenv (OctoPrint and the other
dependencies from the package index, nothing from this checkout; OctoPrint in the version under
test) and served: the plugin loads from there, in German.
"""

from __future__ import annotations

import email
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Iterator, List

import pytest
import requests

from tests.harness.server import OctoPrintServer, free_port
from tests.harness.versions import OCTOPRINT
from tools.basedir import ADMIN_PASSWORD, ADMIN_USER, PLUGIN_ID

REPO = Path(__file__).resolve().parents[2]
CATALOGUE = "octoprint_tracking_queued/translations/de/LC_MESSAGES/messages"
# pip's isolated build takes the newest setuptools for this Python: 77 or newer (SPDX
# License-Expression, see setup.py) from Python 3.9 on, 68 at most on 3.7 and 3.8.
SPDX_SETUPTOOLS = sys.version_info >= (3, 9)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
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
            str(out),
            str(REPO),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [built] = out.glob("*.whl")
    return built


def test_wheel_builds_with_isolation_and_ships_templates_static_and_translations(wheel: Path):
    names = zipfile.ZipFile(wheel).namelist()
    package = REPO / "octoprint_tracking_queued"
    shipped = [
        p.relative_to(REPO).as_posix()
        for p in package.rglob("*")
        if p.is_file() and p.suffix in (".jinja2", ".js", ".css", ".py", ".po", ".mo")
    ]
    assert shipped and set(shipped) <= set(names)
    assert {CATALOGUE + ".po", CATALOGUE + ".mo"} <= set(names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[octoprint.plugin]" in text and "tracking_queued = octoprint_tracking_queued" in text


def test_wheel_metadata_has_the_license_and_its_text(wheel: Path):
    archive = zipfile.ZipFile(wheel)
    names = archive.namelist()
    meta = email.message_from_bytes(archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))))
    assert meta.get_all("License-File") == ["LICENSE"]
    if SPDX_SETUPTOOLS:
        assert meta["License-Expression"] == "AGPL-3.0-only"
        assert meta["License"] is None  # the deprecated free-text field is gone
        [license_text] = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
    else:  # setuptools 68 at most: the free-text field, the text beside METADATA
        assert meta["License"] == "AGPL-3.0-only" and meta["License-Expression"] is None
        [license_text] = [n for n in names if n.endswith(".dist-info/LICENSE")]
    assert b"GNU AFFERO GENERAL PUBLIC LICENSE" in archive.read(license_text)
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL"))
    assert {"Homepage", "Source", "Issues", "Changelog"} <= set(urls)


class CleanVenvServer(OctoPrintServer):
    """The harness's server, run by another virtualenv's Python."""

    python: Path

    def command(self) -> List[str]:
        return [str(self.python), *super().command()[1:]]


@pytest.fixture
def clean_venv_server(wheel: Path, tmp_path: Path, outbound_guard) -> Iterator[CleanVenvServer]:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=120)
    python = venv / "bin" / "python"
    # The wheel alone; pip brings OctoPrint and the rest from the index (from its cache when it can),
    # OctoPrint in the version this run tests (./dev runs this file on each).
    install = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "-q",
            str(wheel),
            f"OctoPrint=={OCTOPRINT}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    server = CleanVenvServer(
        tmp_path / "basedir",
        free_port(),
        {"enabled": False},
        env=outbound_guard.proxy_env(),
    )
    server.python = python
    server.start(timeout=90)
    yield server
    server.stop()


def test_the_wheel_alone_in_a_new_venv_loads_the_plugin_with_its_german_catalogue(clean_venv_server):
    server = clean_venv_server
    site_packages = next((server.python.parent.parent / "lib").glob("python3*/site-packages"))
    package = site_packages / "octoprint_tracking_queued"
    assert (package / "translations" / "de" / "LC_MESSAGES" / "messages.mo").is_file()
    # Loaded from the new venv, not from this checkout.
    assert f"Anonymous Usage Tracking (Queued) (0.1.0) = {package}" in server.log_text()

    plugins = server.api("GET", "/plugin/pluginmanager/plugins").json()["plugins"]
    [ours] = [p for p in plugins if p["key"] == PLUGIN_ID]
    assert ours["enabled"] and ours["version"] == "0.1.0"
    assert server.api("GET", "/api/version").json()["server"] == OCTOPRINT

    # The JavaScript's strings: OctoPrint reads them from the .po.
    script = server.anonymous("GET", "/i18n/de/messages.js").text
    assert "Bitte entscheide dich zum Anonymous Usage Tracking (mit Warteschlange)" in script

    # Templates and Python: rendered from the .mo into the page of a logged-in user.
    session = requests.Session()
    session.trust_env = False
    session.get(server.url + "/login", timeout=30)  # sets the CSRF cookie the login must echo
    [csrf] = [value for name, value in session.cookies.items() if name.startswith("csrf_token")]
    login = session.post(
        server.url + "/api/login",
        json={"user": ADMIN_USER, "pass": ADMIN_PASSWORD, "remember": False},
        headers={"X-CSRF-Token": csrf},
        timeout=30,
    )
    assert login.status_code == 200, login.text
    page = session.get(server.url + "/", params={"l10n": "de"}, timeout=60).text
    assert "Anonymous Usage Tracking (mit Warteschlange)" in page
    assert "Getrackte Events" in page
