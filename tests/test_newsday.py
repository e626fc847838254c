"""The simulated news site of tests/helpers/newsday.py: clean records parse and look like the
real ones, runs repeat, and each fault does what it says and nothing else."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
import yaml

from .helpers.newsday import KINDS, Fault, Provider, Site, default_providers

START = dt.date(2021, 3, 1)  # a Monday
A = "cloudbeat.example"
KEYS = ["title", "excerpt", "publishedDateTime", "webUrl", "type", "quality", "heat", "published", "provider",
        "topics", "images", "related"]
SMALL = [Provider("wire.example", "Wire", 8), Provider(A, "CloudBeat", 8, quality_mean=120),
         Provider("weekly.example", "Weekly", 4, every_days=7)]


def front(path: Path, loader=yaml.SafeLoader):
    text = path.read_text()
    assert text.startswith("---\n")
    return yaml.load(text[4:].split("\n---\n", 1)[0], Loader=loader)


def build(folder: Path, days: int, faults=(), providers=SMALL, seed=3):
    site = Site(folder, providers, START, seed=seed, faults=faults)
    return site, [site.day(i) for i in range(days)]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_a_clean_day_parses_with_the_keys_of_real_records(tmp_path):
    site, results = build(tmp_path, 2, providers=default_providers())
    day = results[1]
    assert day.as_of == dt.datetime(2021, 3, 2, 23, 59, 59, tzinfo=dt.timezone.utc) == site.as_of(1)
    assert len(day.written) > 60 and not day.rewritten and not day.deleted
    heats = []
    for path in day.written:
        r = front(path)
        assert list(r) == KEYS
        assert re.fullmatch(r"2021-03-02-[a-z0-9-]+\.md", path.name)
        assert path.parent.name == r["provider"]["domain"].replace(".", "-")
        assert r["webUrl"] == f"https://{r['provider']['domain']}/{path.name[11:-3]}"
        published = r["publishedDateTime"]
        assert published.tzinfo == dt.timezone.utc and published.date() == day.date and published < day.as_of
        assert type(r["quality"]) is int and 0 <= r["quality"] <= 190
        assert r["heat"] == -1 or 0 <= r["heat"] <= 500
        heats.append(r["heat"])
        assert r["type"] == "article" and r["published"] is True
        assert 1 <= len(r["topics"]) <= 3 and all(isinstance(t, str) for t in r["topics"])
        assert 1 <= len(r["images"]) <= 3
        assert all(set(i) == {"url", "width", "height"} and type(i["width"]) is int for i in r["images"])
        assert 0 <= len(r["related"]) <= 4
        for link in r["related"]:
            assert list(link) == ["title", "webUrl", "publishedDateTime", "provider", "quality", "images"]
            assert link["publishedDateTime"] < published
    assert 0.5 < heats.count(-1) / len(heats) < 0.8
    urls = [site.files[p].url for p in site.files]
    assert len(urls) == len(set(urls))  # one URL per article on a clean site
    assert any(front(p)["related"] for p in day.written) and any(not front(p)["related"] for p in day.written)


def test_default_providers_vary():
    ps = default_providers()
    assert len(ps) == 12 and len({p.domain for p in ps}) == 12
    assert sum(p.per_day >= 15 for p in ps) >= 3 and sum(4 <= p.per_day <= 10 for p in ps) >= 4
    assert any(p.weekend_factor == 0.15 for p in ps) and any(p.every_days == 7 for p in ps)
    assert any(p.start_day == 15 for p in ps)
    assert min(p.quality_mean for p in ps) == 40 and max(p.quality_mean for p in ps) == 150


def test_rhythms_weekends_weekly_and_late_starters(tmp_path):
    providers = [Provider("quiet.example", "Quiet", 20, weekend_factor=0.15),
                 Provider("weekly.example", "Weekly", 3, every_days=7),
                 Provider("late.example", "Late", 5, start_day=15)]
    # stopped: nothing written, and `planned` still says what the clean site would write
    _, results = build(tmp_path, 21, [Fault("stop", None, day=0)], providers=providers)
    assert not any(r.written for r in results)
    planned = {p.domain: [r.providers[p.domain].planned for r in results] for p in providers}
    weekdays = [n for i, n in enumerate(planned["quiet.example"]) if (START + dt.timedelta(i)).weekday() < 5]
    weekends = [n for i, n in enumerate(planned["quiet.example"]) if (START + dt.timedelta(i)).weekday() >= 5]
    assert sum(weekends) / len(weekends) < sum(weekdays) / len(weekdays) / 3
    assert all(n == 0 for i, n in enumerate(planned["weekly.example"]) if i % 7)
    assert not any(planned["late.example"][:15]) and any(planned["late.example"][15:])


def test_the_same_seed_gives_the_same_site_and_another_seed_another(tmp_path):
    build(tmp_path / "a", 3)
    build(tmp_path / "b", 3)
    build(tmp_path / "c", 3, seed=4)
    assert snapshot(tmp_path / "a") == snapshot(tmp_path / "b") != snapshot(tmp_path / "c")


@pytest.fixture(scope="module")
def clean_site(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clean")
    _, results = build(folder, 5)
    return snapshot(folder), results


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_fault_shapes_only_the_files_it_names(tmp_path, kind, clean_site):
    """Every other provider's files are byte-identical to the clean site's; so are the
    faulted provider's files no fault shaped."""
    extra = {"empty_field": {"field": "heat"}}.get(kind, {})
    before, clean = clean_site
    _, faulty = build(tmp_path / "faulty", 5, [Fault(kind, A, day=2, until=3, share=0.5, **extra)])
    after = snapshot(tmp_path / "faulty")
    shaped = {p.relative_to(tmp_path / "faulty").as_posix()
              for r in faulty for paths in r.providers[A].faulted.values() for p in paths}
    assert shaped or kind == "stop"  # the fault did something (stop: by writing nothing)
    for r in faulty:  # and only to A
        assert all(not d.faulted for domain, d in r.providers.items() if domain != A)
    others = {k: v for k, v in before.items() if not k.startswith("cloudbeat-example/")}
    assert {k: v for k, v in after.items() if not k.startswith("cloudbeat-example/")} == others
    untouched = {k: v for k, v in after.items() if k.startswith("cloudbeat-example/") and k not in shaped}
    assert untouched and all(before[k] == v for k, v in untouched.items())
    assert [r.providers[A].planned for r in faulty] == [r.providers[A].planned for r in clean]
    if kind not in ("stop", "shrink", "spike"):
        assert all(len(f.providers[A].written) == len(c.providers[A].written) for f, c in zip(faulty, clean))


def test_stop_writes_nothing_until_it_ends(tmp_path):
    _, results = build(tmp_path, 6, [Fault("stop", A, day=2, until=3), Fault("churn", A, day=0)])
    counts = [(len(r.providers[A].written), len(r.providers[A].rewritten)) for r in results]
    assert counts[2] == counts[3] == (0, 0) and results[2].providers[A].planned
    # churn rewrites the same articles every day: up to 10 of the first day's (the fault's first day)
    assert counts[1][0] and counts[4][0] and counts[4][1] == min(10, counts[0][0])
    assert set(results[4].providers[A].rewritten) == set(results[1].providers[A].rewritten)
    assert all(r.providers["wire.example"].written for r in results)


def test_reject_files_break_pyyaml_after_a_readable_provider_block(tmp_path):
    _, results = build(tmp_path, 6, [Fault("reject", A, day=1, until=5, share=0.5)])
    day = results[1].providers[A]
    assert len(day.faulted["reject"]) == round(0.5 * len(day.written))
    rejected = [p for r in results for p in r.providers[A].faulted.get("reject", [])]
    breaks = set()
    for path in rejected:
        text = path.read_text()
        for loader in (yaml.SafeLoader, yaml.CSafeLoader):
            with pytest.raises(yaml.YAMLError):
                front(path, loader)
        found = re.search(r'^provider:\n  name: "CloudBeat"\n  domain: "([^"]+)"\n', text, re.M)
        assert found and found.group(1) == A
        breaks.add("tab" if "\n\t" in text else "quote")
        head = text[: found.end()]  # the break comes after the provider block
        assert "\t" not in head and yaml.safe_load(head[4:])["provider"]["domain"] == A
    assert breaks == {"tab", "quote"}
    for path in set(day.written) - set(day.faulted["reject"]):
        assert list(front(path)) == KEYS


@pytest.mark.parametrize("provider", [A, None])
def test_shrink_deletes_its_share_of_the_files_before_the_day(tmp_path, provider):
    site = Site(tmp_path, SMALL, START, seed=3, faults=[Fault("shrink", provider, day=3, share=0.6)])
    for i in range(3):
        site.day(i)
    had = {d.domain: {p for p in tmp_path.rglob("*.md") if p.parent.name == d.slug} for d in SMALL}
    r = site.day(3)
    for d in SMALL:
        gone = r.providers[d.domain].deleted
        if provider in (None, d.domain):
            assert len(gone) == round(0.6 * len(had[d.domain])) and set(gone) <= had[d.domain]
            assert not any(p.exists() for p in gone) and not set(gone) & set(site.files)
        else:
            assert not gone
        assert len(r.providers[d.domain].written) == r.providers[d.domain].planned  # the day still publishes
    assert not site.day(4).deleted  # one day only


def test_the_record_faults_change_what_they_say(tmp_path):
    faults = [Fault("spike", "wire.example", day=1, until=1), Fault("empty_field", A, day=1, field="images"),
              Fault("new_key", A, day=1), Fault("rename_key", A, day=1), Fault("type_change", A, day=1),
              Fault("future", A, day=1), Fault("quality_shift", "weekly.example", day=0),
              Fault("duplicates", A, day=2, share=0.5), Fault("churn", A, day=3)]
    site, results = build(tmp_path / "site", 4, faults)
    assert len(results[1].providers["wire.example"].written) == 10 * results[1].providers["wire.example"].planned
    assert len(results[2].providers["wire.example"].written) == results[2].providers["wire.example"].planned
    for path in results[1].providers[A].written:
        r = front(path)
        assert "images" not in r and "excerpt" not in r and r["summary"] and r["sponsor"] == "Acme Cloud"
        assert r["quality"] == "high"
        assert r["publishedDateTime"].date() == START + dt.timedelta(days=31)
    weekly = [front(p)["quality"] for p in results[0].providers["weekly.example"].written]
    assert weekly and sum(weekly) / len(weekly) < 50  # around 100 - 70
    day2 = results[2].providers[A]
    earlier = {site.files[p].url for r in results[:2] for p in r.providers[A].written if p in site.files}
    assert len(day2.faulted["duplicates"]) == round(0.5 * len(day2.written))
    assert {front(p)["webUrl"] for p in day2.faulted["duplicates"]} <= earlier
    urls = [front(p)["webUrl"] for r in results[:3] for p in r.providers[A].written]
    assert len(urls) - len(set(urls)) == len(day2.faulted["duplicates"])
    day3 = results[3].providers[A]
    assert len(day3.rewritten) == 10 and not set(day3.rewritten) & set(day3.written)
    build(tmp_path / "clean", 3, faults[:-1])  # day 3's rewrites against the files as they were
    for path in day3.rewritten:
        old = front(tmp_path / "clean" / path.relative_to(tmp_path / "site"))
        new = front(path)
        assert new["heat"] != old["heat"] and new["webUrl"] == old["webUrl"]
        assert {k: v for k, v in new.items() if k != "heat"} == {k: v for k, v in old.items() if k != "heat"}


def test_faults_are_checked():
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault("explode", A, day=0)
    with pytest.raises(ValueError, match="needs a field"):
        Fault("empty_field", A, day=0)
    with pytest.raises(ValueError, match="names no provider"):
        Site(Path("/nonexistent"), SMALL, START, faults=[Fault("stop", "nope.example", day=0)])
    with pytest.raises(ValueError, match="one of a kind"):
        Site(Path("/nonexistent"), SMALL, START, faults=[Fault("empty_field", A, day=2, field="heat"),
                                                         Fault("empty_field", None, day=0, until=2, field="images")])
    Site(Path("/nonexistent"), SMALL, START, faults=[Fault("stop", A, day=0, until=2), Fault("stop", A, day=3),
                                                     Fault("shrink", None, day=1), Fault("shrink", A, day=2)])
    site = Site(Path("/nonexistent"), SMALL, START)
    with pytest.raises(ValueError, match="in order"):
        site.day(1)
