"""Every kind of collection has the protocol's methods with the same parameters.

``slimvec.protocol.CollectionProtocol`` spells the collection API once; local, multi-vector,
remote, sharded and upgrading collections must match it by ``inspect.signature``: the same parameter
names, in the same order, of the same kinds, with the same defaults. A kind may add a
parameter only where ``EXTENSIONS`` lists it, keyword-only and with a default, so a call
written against the protocol means the same thing on every kind.
"""

from __future__ import annotations

import inspect

import pytest

import slimvec
from slimvec.engine.arguments import SearchParams
from slimvec.multivector.collection import MultiVectorCollection
from slimvec.protocol import MEMBERS, CollectionProtocol
from slimvec.remote.client import RemoteCollection


def _sharded():
    pytest.importorskip("ray")
    from slimvec.distributed import ShardedCollection

    return ShardedCollection


KINDS = {
    "local": lambda: slimvec.Collection,
    "multivector": lambda: MultiVectorCollection,
    "remote": lambda: RemoteCollection,
    "sharded": _sharded,
    "upgrading": lambda: slimvec.UpgradingCollection,
}

#: Parameters a kind adds to a protocol method: (kind, method) -> names, each with its reason.
#: Sharded ``info(timeout=)``: how long to wait for each shard replica's answer. Local (and
#: multi-vector) ``add(progress=)``: a progress bar for a long add, which runs in this process.
EXTENSIONS: dict[tuple[str, str], set[str]] = {
    ("sharded", "info"): {"timeout"},
    ("local", "add"): {"progress"},
    ("multivector", "add"): {"progress"},
}


def _params(function) -> list[tuple[str, inspect._ParameterKind, object]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


def test_the_protocol_lists_the_whole_api():
    names = [name for name, _ in MEMBERS]
    assert names == [
        *("dim", "metric", "spec", "id_kind"),
        *("add", "upsert", "add_texts", "delete", "update_metadata"),
        *("search", "search_texts"),
        *("get", "count", "metadata", "texts", "__len__"),
        *("create_index", "compact", "info", "close"),
        *("set_target_recall", "live_recall"),
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_signatures_match_the_protocol(kind):
    cls = KINDS[kind]()
    problems = []
    for name, member in MEMBERS:
        found = inspect.getattr_static(cls, name, None)
        if found is None:
            problems.append(f"{name}: missing")
        elif member == "property":
            if not isinstance(found, property):
                problems.append(f"{name}: should be a property, is {type(found).__name__}")
        else:
            want = _params(getattr(CollectionProtocol, name))
            got = _params(getattr(cls, name))
            extra = EXTENSIONS.get((kind, name), set())
            added = [p for p in got if p[0] in extra]
            if any(p[1] != inspect.Parameter.KEYWORD_ONLY or p[2] is inspect._empty for p in added):
                problems.append(f"{name}: added parameters must be keyword-only with a default")
            got = [p for p in got if p[0] not in extra]
            if got != want:
                problems.append(
                    f"{name}{inspect.signature(getattr(cls, name))} should be "
                    f"{name}{inspect.signature(getattr(CollectionProtocol, name))}"
                )
    assert not problems, f"{cls.__name__} drifted from CollectionProtocol:\n" + "\n".join(problems)


def test_a_local_collection_is_an_instance(tmp_path):
    col = slimvec.create(tmp_path / "c", 4)
    assert isinstance(col, CollectionProtocol) and isinstance(col, slimvec.CollectionProtocol)
    assert not isinstance(object(), CollectionProtocol)


@pytest.mark.parametrize("kind", KINDS)
def test_every_search_takes_exactly_the_search_params(kind):
    """How a search runs is spelled once (``SearchParams``): a new option added there and not
    to a kind's ``search`` / ``search_texts`` (or the reverse) fails here."""
    cls = KINDS[kind]()
    search = list(inspect.signature(cls.search).parameters)
    texts = list(inspect.signature(cls.search_texts).parameters)
    assert search[:3] == ["self", "queries", "k"]
    assert tuple(search[3:]) == SearchParams.names() == tuple(texts[-len(SearchParams.names()) :])
