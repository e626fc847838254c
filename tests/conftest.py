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


# -- how `make test` spreads the suite over the cores ----------------------------------------------
#
# pytest-xdist, `--dist loadfile`: each module runs whole on one worker, so its module fixtures are
# built once and a module that owns a server (test_dask's cluster) keeps it to itself. Modules are
# handed out longest first (seconds measured in one `make test`, rounded), so the last to finish
# is a short one; a module missing here counts as short.
MODULE_SECONDS = {
    "test_dask.py": 200, "test_objectstore.py": 140, "test_incremental.py": 85, "test_run_modes.py": 75,
    "test_faults.py": 105, "test_crash.py": 70, "test_paths.py": 60, "test_properties.py": 45, "test_hostile.py": 45,
    "test_html_report.py": 45, "test_reports.py": 35, "test_demo.py": 32, "test_memory.py": 31, "test_readme.py": 29,
    "test_snapshot_files.py": 28, "test_not_a_warehouse.py": 25, "test_filters.py": 25, "test_cli.py": 25,
    "test_schedule.py": 20, "test_inputs.py": 18, "test_export.py": 17, "test_fastyaml.py": 16,
    "test_differential.py": 16, "test_listing.py": 50, "test_checks_seeded.py": 60, "test_checks_clean.py": 75,
    # this round's modules (estimates from their runs alone): started early, they leave no long tail
    "test_guards.py": 80, "test_explore.py": 60, "test_s3_reads.py": 55, "test_frontmatter_formats.py": 40,
    "test_rollback.py": 40, "test_moved_warehouse.py": 35, "test_sites.py": 25, "test_generators.py": 20,
    "test_startup.py": 20, "test_status_figures.py": 25,
}


def pytest_unconfigure(config):
    # the xdist controller, last: a server the workers shared and did not stop (one died)
    if not hasattr(config, "workerinput") and getattr(config.option, "numprocesses", None):
        from .helpers.servers import stop_shared_servers

        stop_shared_servers(config._tmp_path_factory.getbasetemp())


# `make test-fast` leaves out the tests marked slow (each over about 3 s here): these modules,
# every test that uses a real server (Prefect, S3, Dask), Chromium or a costly warehouse, every
# integration test, and the tests marked in their own files
SLOW_MODULES = {"test_dask.py", "test_objectstore.py", "test_faults.py", "test_crash.py", "test_schedule.py",
                "test_memory.py", "test_listing.py"}
SLOW_FIXTURES = {"prefect_server", "s3_server", "records_bucket", "bucket", "s3_records", "harness",
                 "browser", "demo2000", "azure"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if (item.path.name in SLOW_MODULES or SLOW_FIXTURES.intersection(item.fixturenames)
                or item.get_closest_marker("integration")):
            item.add_marker(pytest.mark.slow)
    # stable: within a module, the order the file gives
    items.sort(key=lambda item: -MODULE_SECONDS.get(item.path.name, 0))


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


@pytest.fixture(scope="session", autouse=True)
def _own_cache(tmp_path_factory):
    # what read commands keep per snapshot (newsetl.catalog._cached) goes to a throwaway folder, not ~/.cache
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))
    yield


# Hypothesis: a small budget in `make test`, a long one in `make fuzz` (HYPOTHESIS_PROFILE=fuzz)
# (each property sets its own number of examples: helpers.examples)
settings.register_profile("default", deadline=None, print_blob=True)
settings.register_profile("fuzz", deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture
def delta_layout(monkeypatch):
    """Runs keep every part, however small (build.SMALL_PART_ROWS 0): the fixtures' tables of a
    few dozen rows then show the layout of a large warehouse's, delete files and parts of a run each."""
    from newsetl import build

    monkeypatch.setattr(build, "SMALL_PART_ROWS", 0)


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


# -- real servers: an S3 API (moto) and a Dask cluster, each started once per session ------------

@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """moto's S3 server on 127.0.0.1; its settings are in this process's environment meanwhile."""
    from .helpers.servers import S3Server

    try:
        server = S3Server(tmp_path_factory.mktemp("moto") / "moto.log")
    except (OSError, RuntimeError) as e:
        pytest.skip(f"the S3 API server (moto_server, from moto[server]) could not start: {e}")
    saved = {k: os.environ.get(k) for k in server.env}
    os.environ.update(server.env)
    yield server
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    server.stop()


@pytest.fixture(scope="session")
def s3_records(tmp_path_factory) -> list[Path]:
    """Local folders of records to put in a bucket: generated ones (some malformed on purpose),
    the report fixtures, and a month of the real corpus where it is present."""
    from newsetl.demo import generate

    demo = tmp_path_factory.mktemp("s3-records") / "demo"
    generate(demo, records=300, seed=13)
    folders = [demo, FIXTURES / "reports"]
    if (CORPUS / "azure-2021-01").is_dir():
        folders.append(CORPUS / "azure-2021-01")
    return folders


@pytest.fixture(scope="session")
def local_warehouse(s3_records, tmp_path_factory) -> Path:
    """`s3_records` run from their local folders into a local warehouse: what a run of the same
    records from a bucket, or on a Dask cluster, must equal (read-only)."""
    from newsetl import pipeline

    wh = tmp_path_factory.mktemp("local-wh")
    pipeline.run(s3_records, wh, workers=1)
    return wh


@pytest.fixture(scope="session")
def records_bucket(s3_server, s3_records):
    """A bucket holding `s3_records` at sites/<folder name>/..., for tests that only read it;
    (bucket, input URLs, how many objects were put)."""
    from .helpers.servers import upload_folder

    client = s3_server.client()
    client.create_bucket(Bucket="news-sites")
    n = sum(upload_folder(client, f, "news-sites", f"sites/{f.name}") for f in s3_records)
    return "news-sites", [f"s3://news-sites/sites/{f.name}" for f in s3_records], n


@pytest.fixture
def bucket(s3_server, tmp_path, monkeypatch) -> str:
    """A new empty bucket for one test, and a mirror cache of the test's own (one machine)."""
    import uuid

    monkeypatch.setenv("NEWSETL_CACHE_DIR", str(tmp_path / "cache"))
    name = f"wh-{uuid.uuid4().hex[:12]}"
    s3_server.client().create_bucket(Bucket=name)
    return name


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
    from .helpers.servers import start_server

    yield from start_server(tmp_path_factory)
