"""Shared fixtures. The real corpus is read in place from ../shared/corpus."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
BAD_INPUT = FIXTURES / "bad_input"
CORPUS = Path(os.environ.get("NEWSETL_CORPUS", ROOT.parent / "shared" / "corpus"))


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.skip(f"real corpus not found at {CORPUS} (set NEWSETL_CORPUS); skipping tests over real records")
    return CORPUS


@pytest.fixture(scope="session", autouse=True)
def _quiet_prefect(tmp_path_factory):
    # Prefect keeps its state under PREFECT_HOME: a throwaway one per test session
    os.environ.setdefault("PREFECT_HOME", str(tmp_path_factory.mktemp("prefect-home")))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    yield
