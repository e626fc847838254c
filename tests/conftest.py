"""Shared fixtures. The real corpus is read in place from ../shared/corpus."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

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
    # Prefect's temporary server gets 20 s to start; on a loaded 2-core machine that is not always enough
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    yield


# Hypothesis: a small budget in `make test`, a long one in `make fuzz` (HYPOTHESIS_PROFILE=fuzz)
# (each property sets its own number of examples: helpers.examples)
settings.register_profile("default", deadline=None, print_blob=True)
settings.register_profile("fuzz", deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(scope="session")
def corpus_files(corpus) -> list[Path]:
    """Every real record file (for mutations)."""
    return sorted(p for p in corpus.rglob("*.md") if p.name != "README.md")


@pytest.fixture(scope="session")
def reports_wh(tmp_path_factory) -> Path:
    """The warehouse of the fixture records in tests/fixtures/reports (helpers.model models
    them), built once for every module that only reads it."""
    from newsetl import pipeline

    out = tmp_path_factory.mktemp("reports-wh")
    pipeline.run([FIXTURES / "reports"], out, workers=1)
    return out


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory) -> Path:
    """The records `make run` generates: 2,000 demo records, seed 42 (read-only)."""
    from newsetl.demo import generate

    out = tmp_path_factory.mktemp("demo") / "demo"
    generate(out, records=2000, seed=42)
    return out


@pytest.fixture(scope="session")
def demo_wh(demo_dir, tmp_path_factory) -> Path:
    """The warehouse `make run` builds from them (read-only)."""
    from newsetl import pipeline

    out = tmp_path_factory.mktemp("demo-wh") / "warehouse"
    pipeline.run([demo_dir], out)
    return out


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory):
    """A real Prefect server for the session: (its API URL, its PREFECT_HOME)."""
    from .helpers.prefect_server import start_server

    yield from start_server(tmp_path_factory)
