"""Marks this folder's tests: each starts a real ``octoprint serve`` (fixtures come from tests/harness)."""

from __future__ import annotations

from pathlib import Path
from typing import List

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    # Everything under tests/integration starts a server: mark it so
    # `pytest -m "not integration"` gives a quick unit-only run.
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.integration)
