"""A reference for newsetl.safeyaml: PyYAML's own node-based safe loader, with the
documented departures (safeyaml's module docstring) written as constructor
overrides. Slow and memory-hungry, and obviously PyYAML: the property tests
check that safeyaml gives exactly what this gives."""

from __future__ import annotations

import datetime as dt
import math

import yaml
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from newsetl.safeyaml import (BINARY, MERGE, VALUE, INT64_MAX, INT64_MIN, Duplicates, Key, Unrepresentable,
                              YAMLProblem, sort_key)


def _key(v):
    return Key("tag:yaml.org,2002:" + ("bool" if isinstance(v, bool) else "float"), v) \
        if isinstance(v, (bool, float)) else v


def _unkey(v):
    return v.value if isinstance(v, Key) else v


class _Constructor(yaml.constructor.SafeConstructor):
    def construct_yaml_bool(self, node):
        try:
            return super().construct_yaml_bool(node)
        except KeyError:  # an explicit !!bool on text that is no boolean
            return Unrepresentable(node.tag, node.value, "not a valid bool")

    def construct_yaml_int(self, node):
        try:
            v = super().construct_yaml_int(node)
        except ValueError as e:
            return Unrepresentable(node.tag, node.value, f"not a number: {e}")
        except (IndexError, KeyError):  # `!!int ''`
            return Unrepresentable(node.tag, node.value, "not a valid int")
        return v if INT64_MIN <= v <= INT64_MAX else Unrepresentable(node.tag, node.value, "integer beyond 64 bits")

    def construct_yaml_float(self, node):
        try:
            v = super().construct_yaml_float(node)
        except ValueError as e:
            return Unrepresentable(node.tag, node.value, f"not a number: {e}")
        except IndexError:  # `!!float ''`
            return Unrepresentable(node.tag, node.value, "not a valid float")
        return v if math.isfinite(v) else Unrepresentable(node.tag, node.value, "not a finite number")

    def construct_yaml_timestamp(self, node):
        try:
            v = super().construct_yaml_timestamp(node)
        except (ValueError, OverflowError) as e:
            return Unrepresentable(node.tag, node.value, f"not a valid date: {e}")
        except AttributeError:  # an explicit !!timestamp on text that is no timestamp
            return Unrepresentable(node.tag, node.value, "not a valid timestamp")
        if isinstance(v, dt.datetime) and v.tzinfo is not None:
            try:
                v.astimezone(dt.timezone.utc)
            except OverflowError:
                return Unrepresentable(node.tag, node.value, "date outside the years 1-9999 in UTC")
        return v

    def construct_yaml_binary(self, node):
        return "".join(self.construct_scalar(node).split())

    def construct_yaml_set(self, node):
        return sorted(map(_unkey, self.construct_mapping(node)), key=sort_key)

    def construct_yaml_omap(self, node):
        return [list(pair) for pair in self.construct_pairs_list(node)]

    construct_yaml_pairs = construct_yaml_omap

    def construct_pairs_list(self, node):
        if not isinstance(node, SequenceNode):
            raise yaml.constructor.ConstructorError(None, None, "expected a sequence", node.start_mark)
        out = []
        for sub in node.value:
            if not isinstance(sub, MappingNode) or len(sub.value) != 1:
                raise yaml.constructor.ConstructorError(None, None, "expected a mapping of length 1", sub.start_mark)
            k, v = sub.value[0]
            out.append((_unkey(_key(self.construct_object(k, deep=True))), self.construct_object(v, deep=True)))
        return out

    def construct_yaml_map(self, node):
        return self.construct_mapping(node, deep=True)

    def construct_yaml_seq(self, node):
        return self.construct_sequence(node, deep=True)

    def construct_mapping(self, node, deep=False):
        if not isinstance(node, MappingNode):
            raise yaml.constructor.ConstructorError(None, None, "expected a mapping node", node.start_mark)
        merges, explicit = [], []
        for key_node, value_node in node.value:
            if key_node.tag == MERGE:
                if value_node.tag not in ("tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"):  # !!omap, !!set: refused
                    raise yaml.constructor.ConstructorError(None, None, "expected a mapping for merging",
                                                            value_node.start_mark)
                subs = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
                for sub in subs:
                    if not isinstance(sub, MappingNode):
                        raise yaml.constructor.ConstructorError(None, None, "expected a mapping for merging",
                                                                sub.start_mark)
                merges.extend(subs)
            else:
                explicit.append((key_node, value_node))
        out = {}
        for sub in reversed(merges):
            value = self.construct_object(sub, deep=True)
            if not isinstance(value, dict):  # a !!set or !!omap is not merged (safeyaml's rule)
                raise yaml.constructor.ConstructorError(None, None, "expected a mapping for merging", sub.start_mark)
            out.update(value)
        seen, dropped = set(), []
        for key_node, value_node in explicit:
            key = key_node.value if key_node.tag == VALUE else _key(self.construct_object(key_node, deep=True))
            if isinstance(key, (list, dict)):
                raise yaml.constructor.ConstructorError(None, None, "found unhashable key", key_node.start_mark)
            if key in seen:
                dropped.append((key, out[key]))
            seen.add(key)
            out[key] = self.construct_object(value_node, deep=True)
        if dropped:
            dup = Duplicates(out)
            dup.dropped = dropped
            return dup
        return out


_Constructor.add_constructor("tag:yaml.org,2002:bool", _Constructor.construct_yaml_bool)
_Constructor.add_constructor("tag:yaml.org,2002:int", _Constructor.construct_yaml_int)
_Constructor.add_constructor("tag:yaml.org,2002:float", _Constructor.construct_yaml_float)
_Constructor.add_constructor("tag:yaml.org,2002:timestamp", _Constructor.construct_yaml_timestamp)
_Constructor.add_constructor(BINARY, _Constructor.construct_yaml_binary)
_Constructor.add_constructor("tag:yaml.org,2002:set", _Constructor.construct_yaml_set)
_Constructor.add_constructor("tag:yaml.org,2002:omap", _Constructor.construct_yaml_omap)
_Constructor.add_constructor("tag:yaml.org,2002:pairs", _Constructor.construct_yaml_pairs)
_Constructor.add_constructor("tag:yaml.org,2002:map", _Constructor.construct_yaml_map)
_Constructor.add_constructor("tag:yaml.org,2002:seq", _Constructor.construct_yaml_seq)


class _Loader(yaml.CParser if hasattr(yaml, "CParser") else yaml._yaml.CParser, _Constructor, yaml.resolver.Resolver):
    def __init__(self, stream):
        yaml._yaml.CParser.__init__(self, stream)
        _Constructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)


def _cyclic(node) -> bool:
    state: dict[int, int] = {}
    stack = [(node, False)]
    while stack:
        n, done = stack.pop()
        if done:
            state[id(n)] = 2
            continue
        s = state.get(id(n))
        if s == 1:
            return True
        if s == 2 or isinstance(n, ScalarNode):
            continue
        state[id(n)] = 1
        stack.append((n, True))
        kids = [c for pair in n.value for c in pair] if isinstance(n, MappingNode) else n.value
        stack.extend((c, False) for c in kids)
    return False


def reference_load(text: str):
    """What safeyaml.load must give; raises YAMLProblem where it must refuse (limits aside)."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _cyclic(node):
            raise YAMLProblem("a cycle")
        return loader.construct_document(node)
    except yaml.YAMLError as e:
        raise YAMLProblem(str(e)) from None
    finally:
        loader.dispose()


def assert_same(got, want, path: str = "$") -> None:
    """Equal values of the same types, keys in the same order; Duplicates with the same dropped values."""
    assert type(got) is type(want), f"{path}: {type(got).__name__} {got!r:.200} != {type(want).__name__} {want!r:.200}"
    if isinstance(want, dict):
        assert list(got) == list(want), f"{path}: keys {list(got)!r:.300} != {list(want)!r:.300}"
        for k in want:
            assert_same(got[k], want[k], f"{path}[{k!r}]")
        if isinstance(want, Duplicates):
            assert len(got.dropped) == len(want.dropped), f"{path}: dropped {got.dropped!r} != {want.dropped!r}"
            for (gk, gv), (wk, wv) in zip(got.dropped, want.dropped):
                assert_same(gk, wk, f"{path}.dropped")
                assert_same(gv, wv, f"{path}.dropped[{wk!r}]")
    elif isinstance(want, list):
        assert len(got) == len(want), f"{path}: length {len(got)} != {len(want)}"
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same(g, w, f"{path}[{i}]")
    elif isinstance(want, float) and math.isnan(want):
        assert math.isnan(got), path
    else:
        assert got == want, f"{path}: {got!r:.200} != {want!r:.200}"
        if isinstance(want, dt.datetime):
            assert got.tzinfo == want.tzinfo, f"{path}: tz {got.tzinfo} != {want.tzinfo}"
