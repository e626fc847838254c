"""Nothing is deleted by accident (issue 24): an input that does not exist or holds no record is
refused, naming it; a run that would delete more than max_delete_share of the warehouse's files
(default a half; [run] in newsetl.toml) stops before writing anything, with one line that counts
them and says how to let it through (--allow-deletes), on every path: in this process, in the
Prefect flow, on a Dask cluster and into a warehouse in object storage (moto's S3 server)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import newsetl
from newsetl import pipeline
from newsetl.checks import Config, ConfigError, load_config
from newsetl.plan import TooManyDeletes
from newsetl.sources import InputError
from newsetl.store import Warehouse

from .helpers import examples
from .helpers.cli import newsetl_cli
from .helpers.records import record
from .helpers.servers import keys, upload_folder

EXIT_USAGE = 2  # the code of every refusal of what the command line asked (cli.EXIT_USAGE)


def site(folder: Path, n: int, prefix: str = "a") -> Path:
    """A folder of `n` records, one file each."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"{prefix}{i:03d}.md").write_text(record(f"{prefix}{i}", f"quality: {i}"))
    return folder


def record_count(folder: Path) -> int:
    """Record files in `folder`, counted here with os.walk (not by newsetl)."""
    return sum(1 for _d, _s, files in os.walk(folder) for f in files if f.endswith((".md", ".markdown")))


def tree(root: Path) -> dict[str, object]:
    """Every entry under `root` with its bytes, a link's target, or "<dir>"; the lock file's
    text (who held it last) aside: taking the lock is not writing the warehouse."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(dirpath, name)
            rel = str(p.relative_to(root))
            out[rel] = (os.readlink(p) if p.is_symlink() else "<dir>" if p.is_dir()
                        else "<lock>" if rel == ".lock" else p.read_bytes())
    return out


def lock_is_free(wh: Path) -> bool:
    with Warehouse(wh).try_lock() as held:
        return held


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


def articles(wh) -> int:
    con = newsetl.connect(wh)
    try:
        return con.sql("SELECT count(*) FROM articles").fetchall()[0][0]
    finally:
        con.close()


# -- inputs that hold nothing ----------------------------------------------------------------

def test_a_missing_or_empty_input_folder_is_an_error_naming_it(tmp_path):
    wh = tmp_path / "wh"
    pipeline.run([site(tmp_path / "demo", 4)], wh, workers=1)
    before = tree(wh)
    empty = tmp_path / "empty"
    empty.mkdir()
    other = tmp_path / "notes"  # files, none of them a record; a record in a hidden folder is skipped
    other.mkdir()
    (other / "readme.txt").write_text("not a record")
    (other / ".git").mkdir()
    (other / ".git" / "x.md").write_text(record("x", ""))
    for folder, says in ((empty, f"input folder holds no record file (*.md, *.markdown): {empty}"),
                         (other, f"input folder holds no record file (*.md, *.markdown): {other}"),
                         (tmp_path / "nope", f"input folder not found: {tmp_path / 'nope'}")):
        r = newsetl_cli("run", str(folder), "--warehouse", str(wh), "--no-prefect", "--allow-deletes")
        assert r.returncode == EXIT_USAGE, r.stderr
        assert one_line(r.stderr) == f"newsetl run: error: {says}"
        assert tree(wh) == before
    # one empty input among others is refused too: its files would all go
    with pytest.raises(InputError, match="holds no record file"):
        pipeline.run([tmp_path / "demo", empty], wh, workers=1, allow_deletes=True)
    assert tree(wh) == before and lock_is_free(wh)


def test_an_input_of_rejected_files_only_is_not_empty(tmp_path):
    """A file named as a record that cannot be read as one is a record file: it is listed (rejected)."""
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "a.md").write_text("no front matter here\n")
    out = pipeline.run([folder], tmp_path / "wh", workers=1)
    assert (out.run["files_seen"], out.run["files_rejected"]) == (1, 1)


# -- the share of deleted files ------------------------------------------------------------------

def test_a_run_that_would_delete_most_files_writes_nothing_and_says_why(tmp_path):
    demo = site(tmp_path / "demo", 10)
    wh = tmp_path / "wh"
    pipeline.run([demo], wh, workers=1)
    other = site(tmp_path / "other", 3, prefix="o")
    before = tree(wh)
    r = newsetl_cli("run", str(other), "--warehouse", str(wh), "--no-prefect")
    assert r.returncode == EXIT_USAGE, r.stderr
    line = one_line(r.stderr)
    held = record_count(demo)
    assert f"would delete {held:,} of the {held:,} files in {wh} (100%, more than max_delete_share 0.5)" in line
    assert f"its inputs differ from the last run's (demo={demo} before, other={other} now)" in line
    assert "nothing was written" in line and "--allow-deletes" in line and "[run] in newsetl.toml" in line
    assert tree(wh) == before  # no snapshot, no staging, no marker, the same catalog
    assert lock_is_free(wh)
    assert articles(wh) == held
    # let through: the warehouse then holds the other folder's records alone
    r = newsetl_cli("run", str(other), "--warehouse", str(wh), "--no-prefect", "--allow-deletes", "-q")
    assert r.returncode == 0, r.stderr
    assert articles(wh) == record_count(other)
    runs = newsetl.query("SELECT files_deleted, files_new FROM runs ORDER BY started_at DESC LIMIT 1", wh)
    assert runs.iloc[0].tolist() == [held, record_count(other)]


def test_the_share_is_a_limit_not_a_floor_and_comes_from_newsetl_toml(tmp_path, monkeypatch):
    demo = site(tmp_path / "demo", 10)
    wh = tmp_path / "wh"
    pipeline.run([demo], wh, workers=1)
    stash = tmp_path / "stash"
    stash.mkdir()
    for p in sorted(demo.iterdir())[:5]:  # exactly half: not more than the share
        shutil.move(p, stash / p.name)
    out = pipeline.run([demo], wh, workers=1)
    assert out.run["files_deleted"] == 5 and articles(wh) == record_count(demo) == 5
    # a stricter share from ./newsetl.toml: 2 of 5 is more than 0.3
    monkeypatch.chdir(tmp_path)
    (tmp_path / "newsetl.toml").write_text("[run]\nmax_delete_share = 0.3\n")
    for p in sorted(demo.iterdir())[:2]:
        p.unlink()
    before = tree(wh)
    with pytest.raises(TooManyDeletes, match=r"would delete 2 of the 5 files .*\(40%, more than max_delete_share 0.3\)"):
        pipeline.run([demo], wh, workers=1)
    assert tree(wh) == before and lock_is_free(wh)
    r = newsetl_cli("run", str(demo), "--warehouse", str(wh), "--no-prefect", cwd=tmp_path)
    assert r.returncode == EXIT_USAGE and "max_delete_share 0.3" in one_line(r.stderr)
    assert tree(wh) == before
    # and a looser one lets it through
    (tmp_path / "newsetl.toml").write_text("[run]\nmax_delete_share = 0.4\n")
    assert pipeline.run([demo], wh, workers=1).run["files_deleted"] == 2


@pytest.mark.parametrize("text, says", [
    ("[run]\nmax_delete_share = 1.5\n", "run.max_delete_share: expected a share between 0 and 1, got 1.5"),
    ("[run]\nmax_delete_share = -0.1\n", "run.max_delete_share: expected a number of at least 0"),
    ("[run]\nmax_delete_share = \"half\"\n", "run.max_delete_share: expected a number, got 'half'"),
    ("[run]\nmax_deletes = 0.5\n", "run.max_deletes: unknown setting (run has: max_delete_share)"),
    ("run = 0.5\n", "run: expected a table ([run])"),
])
def test_a_wrong_run_setting_is_one_line_naming_the_key(tmp_path, text, says):
    path = tmp_path / "newsetl.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert str(e.value) == f"{path}: {says}" or str(e.value).startswith(f"{path}: {says}")
    r = newsetl_cli("run", str(site(tmp_path / "demo", 1)), "--warehouse", str(tmp_path / "wh"), "--no-prefect",
                    "--config", str(path))
    assert r.returncode == 3 and says in one_line(r.stderr)  # a wrong configuration, as `newsetl check` says it
    assert not (tmp_path / "wh").exists()


def test_a_first_run_and_a_partial_rerun(tmp_path):
    """A first run deletes nothing. A re-run with one input of two deletes the other's files:
    refused when they are more than the share, let through when they are not."""
    big, small = site(tmp_path / "big", 6, "b"), site(tmp_path / "small", 2, "s")
    wh = tmp_path / "wh"
    first = pipeline.run([big, small], wh, workers=1)
    assert first.run["files_deleted"] == 0
    before = tree(wh)
    with pytest.raises(TooManyDeletes, match=r"would delete 6 of the 8 files .* its inputs differ"):
        pipeline.run([small], wh, workers=1)
    assert tree(wh) == before
    out = pipeline.run([big], wh, workers=1)  # 2 of 8: within the share
    assert out.run["files_deleted"] == record_count(small)
    assert articles(wh) == record_count(big)


HEALTH = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]


@settings(suppress_health_check=HEALTH, max_examples=examples(6), deadline=None)
@given(n=st.integers(1, 8), data=st.data(), share=st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]))
def test_a_refused_run_writes_nothing_and_an_allowed_one_deletes_exactly(tmp_path_factory, n, data, share):
    """For any warehouse and any files deleted from its input (one kept, so the input is not
    empty): the run is refused exactly when more than `share` of its files go, and then leaves
    every byte of the warehouse as it was; with allow_deletes it deletes exactly those."""
    base = tmp_path_factory.mktemp("share")
    demo = site(base / "demo", n)
    wh = base / "wh"
    pipeline.run([demo], wh, workers=1)
    held = record_count(demo)
    gone = data.draw(st.sets(st.integers(0, n - 1), max_size=n - 1))
    for i in gone:
        (demo / f"a{i:03d}.md").unlink()
    config = Config(max_delete_share=share)  # the defaults otherwise, whatever ./newsetl.toml holds
    before = tree(wh)
    if len(gone) > share * held:
        with pytest.raises(TooManyDeletes, match=f"would delete {len(gone)} of the {held} files"):
            pipeline.run([demo], wh, workers=1, config=config)
        assert tree(wh) == before and lock_is_free(wh)
    out = pipeline.run([demo], wh, workers=1, config=config, allow_deletes=True)
    assert out.run["files_deleted"] == len(gone)
    assert articles(wh) == record_count(demo) == n - len(gone)


# -- the same guard in the Prefect flow, its deployment, on Dask and in object storage ------------

def test_the_deployment_stores_allow_deletes(tmp_path):
    from newsetl.serve import deployment_parameters

    site(tmp_path / "demo", 1)
    assert deployment_parameters([str(tmp_path / "demo")], str(tmp_path / "wh"))["allow_deletes"] is False
    assert deployment_parameters([str(tmp_path / "demo")], str(tmp_path / "wh"), allow_deletes=True)["allow_deletes"]
    import yaml

    doc = yaml.safe_load((Path(__file__).parents[1] / "prefect.yaml").read_text())
    assert all(d["parameters"]["allow_deletes"] is False for d in doc["deployments"])


def test_the_flow_refuses_and_lets_through_with_its_parameter(prefect_server, tmp_path):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from newsetl.flows import news_etl

    demo, other = site(tmp_path / "demo", 4), site(tmp_path / "other", 1, "o")
    wh = tmp_path / "wh"
    with temporary_settings(updates={PREFECT_API_URL: prefect_server[0]}):
        news_etl(inputs=[str(demo)], warehouse=str(wh))
        before = tree(wh)
        with pytest.raises(TooManyDeletes, match="would delete 4 of the 4 files"):
            news_etl(inputs=[str(other)], warehouse=str(wh))
        assert tree(wh) == before and lock_is_free(wh)
        out = news_etl(inputs=[str(other)], warehouse=str(wh), allow_deletes=True)
    assert out["run"]["files_deleted"] == record_count(demo)


def test_a_dask_run_is_refused_the_same_way(prefect_server, tmp_path):
    url, home = prefect_server
    env = {"PREFECT_API_URL": url, "PREFECT_HOME": str(home)}
    demo, other = site(tmp_path / "demo", 4), site(tmp_path / "other", 1, "o")
    wh = tmp_path / "wh"
    pipeline.run([demo], wh, workers=1)
    before = tree(wh)
    r = newsetl_cli("run", str(other), "--warehouse", str(wh), "--dask", "local:1", "-q", env=env)
    assert r.returncode == EXIT_USAGE, r.stderr
    # newsetl's line last (Prefect logs the flow run's failure before it, without a traceback)
    assert r.stderr.splitlines()[-1].startswith("newsetl run: error: this run would delete 4 of the 4 files")
    assert "Traceback" not in r.stderr
    assert tree(wh) == before and lock_is_free(wh)


def test_an_s3_warehouse_is_guarded_and_nothing_is_written_there(s3_server, bucket, tmp_path):
    client = s3_server.client()
    demo, other = site(tmp_path / "demo", 6), site(tmp_path / "other", 1, "o")
    for f in (demo, other):
        upload_folder(client, f, bucket, f"in/{f.name}")
    url = f"s3://{bucket}/wh"
    pipeline.run([f"s3://{bucket}/in/demo"], url, workers=1)
    objects = {k: client.get_object(Bucket=bucket, Key=k)["ETag"] for k in keys(client, bucket, "wh/")}
    r = newsetl_cli("run", f"s3://{bucket}/in/other", "--warehouse", url, "--no-prefect",
                    env={"NEWSETL_CACHE_DIR": os.environ["NEWSETL_CACHE_DIR"]})
    assert r.returncode == EXIT_USAGE, r.stderr
    line = one_line(r.stderr)
    assert f"would delete 6 of the 6 files in {url}" in line
    assert f"demo=s3://{bucket}/in/demo before, other=s3://{bucket}/in/other now" in line
    # not an object more or less, none rewritten (no _running marker, no staging, the same pointer)
    assert {k: client.get_object(Bucket=bucket, Key=k)["ETag"] for k in keys(client, bucket, "wh/")} == objects
    # an empty prefix is refused as a missing one is (tests/test_objectstore.py)
    client.put_object(Bucket=bucket, Key="in/notes/readme.txt", Body=b"not a record")
    r = newsetl_cli("run", f"s3://{bucket}/in/notes", "--warehouse", url, "--no-prefect", "--allow-deletes")
    assert r.returncode == EXIT_USAGE
    assert one_line(r.stderr) == ("newsetl run: error: input holds no record object (*.md, *.markdown) under "
                                  f"s3://{bucket}/in/notes")
    out = pipeline.run([f"s3://{bucket}/in/other"], url, workers=1, allow_deletes=True)
    assert out.run["files_deleted"] == record_count(demo)
    assert articles(url) == record_count(other)
    doc = json.loads(client.get_object(Bucket=bucket, Key="wh/_current.json")["Body"].read())
    assert doc["snapshot"] == out.run_id
