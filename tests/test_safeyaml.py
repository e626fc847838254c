"""safeyaml means what PyYAML's safe loader means (tests/helpers/yamlref.py, with the
documented departures), within its caps. The property test in test_properties.py
draws documents from YAML's grammar; each document it ever found a difference on
is kept here by name."""

from __future__ import annotations

import pytest

from newsetl import limits, safeyaml

from .helpers.yamlref import assert_same, reference_load

# Found by Hypothesis (test_the_loader_means_what_pyyaml_means), with what was wrong.
REGRESSIONS = {
    # the reference merged a !!set's members; safeyaml refuses it: both must refuse
    "merge-of-a-set": "<<: !!set {b, a, c}\n",
    # an anchor given again inside the collection it names was accepted
    "anchor-reused-while-open": "title: &a0 [&a0 null]\n",
    # an explicit tag on text it does not fit: PyYAML raises AttributeError / KeyError
    "timestamp-tag-on-text": "title:\n  title: !!timestamp 2021-02-30\n   title: x\n",
    "bool-tag-on-text": "title:\n  title: !!bool yes\n   title: x\n",
    "int-tag-on-text": "a: !!int abc\nb: !!int ''\nc: !!float x\nd: !!float ''\n",
    # the reference merged an !!omap's items as mappings; safeyaml refuses it, as it refuses a !!set
    "merge-of-an-omap": "title: {<<: !!omap [a: 1, b: 2]}\n",
}
EDGES = {
    "merge-precedence": "b: &x {p: 1, q: 2}\nd: &y {p: 2, r: 1}\nc:\n  <<: [*x, *y]\n  q: 3\n",
    "key-types": "1: a\ntrue: b\n1.0: c\n'1': d\nnull: e\n2021-01-01: f\n",
    "set-omap-binary": "s: !!set {b, 1, true}\no: !!omap [x: 1]\nb: !!binary aGVs bG8=\n",
    "duplicates-nested": "a: {x: 1, x: 2}\nb: [{y: 1, y: 2}]\n",
    "unrepresentable": "a: .nan\nb: 99999999999999999999\nc: 2021-02-30\nd: 9999-12-31T23:59:59-14:00\n",
    "alias-to-scalar-key": "k: &k key\n*k : v\n",
    "empty": "",
    "comment-only": "# nothing\n",
}


def _outcome(load, text):
    try:
        return load(text)
    except safeyaml.YAMLProblem:
        return "refused"


@pytest.mark.parametrize("name", [*REGRESSIONS, *EDGES])
def test_the_same_as_pyyaml(name):
    text = {**REGRESSIONS, **EDGES}[name]
    got, want = _outcome(safeyaml.load, text), _outcome(reference_load, text)
    if "refused" in (got, want):
        assert got == want
    else:
        assert_same(got, want)


def test_caps_stop_early_with_the_position():
    cap = limits.Limits(file_bytes=1 << 20, nodes=10, expanded_bytes=100, depth=3)
    with pytest.raises(safeyaml.YAMLLimit, match=r"more than 10 keys and items") as e:
        safeyaml.load("l: [" + ", ".join("x" * 11) + "]", cap)
    assert (e.value.line, e.value.column) == (0, 28)  # the root, the list and 9 items make 11: the 9th x
    with pytest.raises(safeyaml.YAMLLimit, match="alias bomb: .* more than 100 characters"):
        safeyaml.load("a: &a " + "y" * 60 + "\nb: *a\n", cap)
    with pytest.raises(safeyaml.YAMLLimit, match="nesting deeper than 3 levels"):
        safeyaml.load("a: [[[1]]]", cap)
    assert safeyaml.load("a: [[1]]", cap) == {"a": [[1]]}


def test_settle_turns_what_cannot_be_held_into_issues():
    value, issues = safeyaml.load_record("a: 1\na: 2\nb: [.inf]\n2021-02-30: x\n")
    assert value == {"a": 2, "b": [None], safeyaml.Unrepresentable(
        "tag:yaml.org,2002:timestamp", "2021-02-30", "not a valid date: day is out of range for month"): "x"}
    assert issues == [("b[0]", ".inf", "not a finite number"),
                      ('["!!timestamp 2021-02-30"]', "2021-02-30", "key: not a valid date: day is out of range for month"),
                      ("a", "1", "duplicate key: this value is dropped, a later one is kept")]
