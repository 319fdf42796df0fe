"""`pip install .` must work with pip's default build isolation and ship everything the plugin needs.

Offline (the default, like every test: only 127.0.0.1): the wheel is built from pyproject.toml
with this venv's setuptools (no build isolation, no index), installed alone with
`--no-index --no-deps` into a new virtualenv whose dependencies come from a local folder, this
venv's installed packages without this checkout (`pip check` proves that they satisfy what
the wheel declares); then served: the plugin loads from the new venv, in German.

Marked `network` (deselected unless TQ_NETWORK=1, README "Tests"): the same with pip's
defaults, build isolation and the package index, the way a user's pip installs the plugin
manager's archive.
"""

from __future__ import annotations

import email
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path
from typing import Iterator, List

import pytest
import requests

from tests.harness.versions import OCTOPRINT
from tools.basedir import ADMIN_PASSWORD, ADMIN_USER, PLUGIN_ID
from tools.server import OctoPrintServer, free_port

REPO = Path(__file__).resolve().parents[2]
CATALOGUE = "octoprint_tracking_queued/translations/de/LC_MESSAGES/messages"
# pip's isolated build takes the newest setuptools for this Python: 77 or newer (SPDX
# License-Expression, see setup.py) from Python 3.9 on, 68 at most on 3.7 and 3.8.
SPDX_SETUPTOOLS = sys.version_info >= (3, 9)


# What of this venv is the checkout itself, not a dependency: left out of the local folder.
OWN = ("octoprint_tracking_queued", "octoprint_trackingqueued", "__editable__", "_octoprint_tracking_queued")


def pip_wheel(out: Path, *options: str) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "-q", *options],
        check=True,
        capture_output=True,
        timeout=300,
        cwd=str(REPO),
    )
    [built] = out.glob("*.whl")
    return built


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built offline: this venv's setuptools, nothing from the index."""
    out = tmp_path_factory.mktemp("wheel")
    return pip_wheel(out, "--no-build-isolation", "--no-index", "-w", str(out), str(REPO))


def contents(wheel: Path) -> set:
    return {n for n in zipfile.ZipFile(wheel).namelist() if ".dist-info/RECORD" not in n}


@pytest.mark.network
def test_the_wheel_built_with_pips_default_isolation_is_the_same(wheel: Path, tmp_path: Path):
    # setuptools from the index into an isolated build environment, as a user's pip does.
    isolated = pip_wheel(tmp_path, "-w", str(tmp_path), str(REPO))
    assert contents(isolated) == contents(wheel)


def test_wheel_ships_templates_static_and_translations(wheel: Path):
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


def new_venv(path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, capture_output=True, timeout=120)
    return path / "bin" / "python"


def pip(python: Path, *args: str) -> None:
    result = subprocess.run(
        [str(python), "-m", "pip", "--disable-pip-version-check", *args], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr


def local_dependencies(folder: Path) -> Path:
    """This venv's installed packages, without this checkout, as a folder of links."""
    folder.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not entry.name.lower().startswith(OWN) and entry.suffix != ".pth":
            (folder / entry.name).symlink_to(entry)
    return folder


def serve(python: Path, tmp_path: Path, outbound_guard) -> CleanVenvServer:
    server = CleanVenvServer(tmp_path / "basedir", free_port(), {"enabled": False}, env=outbound_guard.proxy_env())
    server.python = python
    return server.start(timeout=90)


@pytest.fixture
def clean_venv_server(wheel: Path, tmp_path: Path, outbound_guard) -> Iterator[CleanVenvServer]:
    """The wheel alone in a new venv, every dependency from a local folder: nothing leaves 127.0.0.1."""
    python = new_venv(tmp_path / "venv")
    site = next((tmp_path / "venv" / "lib").glob("python3*/site-packages"))
    deps = local_dependencies(tmp_path / "dependencies")
    (site / "dependencies.pth").write_text(f"{deps}\n", encoding="utf-8")
    pip(python, "install", "--no-index", "--no-deps", "-q", str(wheel))
    pip(python, "check")  # what the wheel declares is there, in versions it accepts
    server = serve(python, tmp_path, outbound_guard)
    yield server
    server.stop()


@pytest.fixture
def index_venv_server(wheel: Path, tmp_path: Path, outbound_guard) -> Iterator[CleanVenvServer]:
    """The wheel in a new venv, OctoPrint (the version under test) and the rest from the index."""
    python = new_venv(tmp_path / "venv")
    pip(python, "install", "-q", str(wheel), f"OctoPrint=={OCTOPRINT}")
    server = serve(python, tmp_path, outbound_guard)
    yield server
    server.stop()


def test_the_wheel_alone_in_a_new_venv_loads_the_plugin_with_its_german_catalogue(clean_venv_server):
    loads_in_german(clean_venv_server)


@pytest.mark.network
def test_the_wheel_with_its_dependencies_from_the_index_loads_the_plugin_in_german(index_venv_server):
    loads_in_german(index_venv_server)


def loads_in_german(server: CleanVenvServer) -> None:
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
