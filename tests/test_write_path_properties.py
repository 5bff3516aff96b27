"""A property-based test of the whole write path (issue 27, item 5).

A hypothesis ``RuleBasedStateMachine`` (the shape of Chroma's
``chromadb/test/property/test_embeddings.py``) drives a local collection through random
sequences of adds, upserts, deletes (by id and by filter), metadata updates (per id and merged
by filter), flushes, compactions, reopens and a second handle's writes, next to a model that is
a plain dict ``id -> (vector, metadata, text)``. After every step the collection must agree with
the model: counts, no duplicate ids, every live id's vector / metadata / text, exact self-search,
filtered exact search against a brute-force filter, no deleted id in any search. Invalid calls
(a zero or NaN vector, a lone surrogate, an id already live, an id that is not) must raise the
documented ``InvalidInputError`` and change nothing, at every batch size.

The fast profile below runs in ``make test``; ``benchmarks/write_path_properties.py`` runs
the same machine for thousands of steps.
"""

from __future__ import annotations

import math
import random
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import ClassVar

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

import slimvec
from slimvec.errors import DuplicateIdError, InvalidInputError

DIM = 8
#: Given ids come from this small range, so that adds collide with live ids and re-use deleted
#: ones; ids the collection assigns itself lie above it.
ID_SPACE = 60
#: Batches this large bypass the write-ahead log (writer.LOG_MAX_ROWS = 64) and become segments.
BIG = (64, 90)
SPECS = ("rabitq:2*40 > f32", "binary*10 > int8*4 > f32", "f32")
G_VALUES = (0, 1, 2, 3)
TOL = 2e-4

texts_st = st.text(st.characters(codec="utf-8"), max_size=12)
meta_st = st.one_of(
    st.none(),
    st.fixed_dictionaries({"g": st.sampled_from(G_VALUES), "t": texts_st}),
    st.fixed_dictionaries({"t": texts_st}),  # no "g": $ne matches it, {"g": v} does not
)
filters_st = st.one_of(
    st.builds(lambda v: {"g": v}, st.sampled_from(G_VALUES)),
    st.builds(lambda v: {"g": {"$ne": v}}, st.sampled_from(G_VALUES)),
    st.builds(lambda v: {"g": {"$gte": v}}, st.sampled_from(G_VALUES)),
    st.builds(lambda vs: {"g": {"$in": vs}}, st.lists(st.sampled_from(G_VALUES), min_size=1)),
    st.builds(lambda v: {"g": {"$exists": v}}, st.booleans()),
    st.builds(lambda a, t: {"$or": [{"g": a}, {"t": t}]}, st.sampled_from(G_VALUES), texts_st),
)


def matches(meta: dict | None, flt: dict) -> bool:
    """The brute-force filter: the few forms ``filters_st`` makes, as the README defines them
    (a missing field matches ``$ne`` and ``$exists: False``)."""
    if "$or" in flt:
        return any(matches(meta, part) for part in flt["$or"])
    ((field, cond),) = flt.items()
    value = None if meta is None else meta.get(field)
    if not isinstance(cond, dict):
        return value == cond
    ((op, arg),) = cond.items()
    if op == "$ne":
        return value != arg
    if op == "$exists":
        return (value is not None) == arg
    if value is None:
        return False
    if op == "$gte":
        return value >= arg
    if op == "$in":
        return value in arg
    raise AssertionError(op)


@st.composite
def batches(draw, ids: str = "maybe", big: bool = True):
    """``(seed, n, ids or None, metadata or None, texts or None)``. Vectors are drawn from
    ``seed`` (Gaussian: no two distinct rows tie; one seed drawn twice repeats rows, which the
    invariants accept as ties); big batches take metadata and texts from the seed too."""
    seed = draw(st.integers(0, 2**32 - 1))
    n = draw(st.integers(*BIG)) if big and draw(st.integers(0, 9)) == 0 else draw(st.integers(1, 5))
    given = ids == "always" or (ids == "maybe" and draw(st.booleans()))
    rng = np.random.default_rng(seed)
    if not given:
        id_list = None
    elif n > 5:
        id_list = rng.choice(ID_SPACE * 2, n, replace=False).tolist()
    else:
        id_list = draw(st.lists(st.integers(0, ID_SPACE - 1), min_size=n, max_size=n, unique=True))
    if n > 5:
        metas = [
            {"g": int(rng.integers(0, 4)), "t": f"r{seed % 97}-{i}"} if i % 5 else None
            for i in range(n)
        ]
        texts = [f"text {seed} {i} é" for i in range(n)] if seed % 3 else None
    else:
        metas = draw(st.one_of(st.none(), st.lists(meta_st, min_size=n, max_size=n)))
        texts = draw(st.one_of(st.none(), st.lists(texts_st, min_size=n, max_size=n)))
    return seed, n, id_list, metas, texts


class WritePathMachine(RuleBasedStateMachine):
    """One collection and its model; see the module docstring."""

    #: Steps run by every instance (the benchmark reports it) and per rule.
    steps: ClassVar[int] = 0
    rules_run: ClassVar[Counter] = Counter()

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="slimvec-props-"))
        self.path = self.tmp / "c"
        self.col = None
        self.other = None  # a second handle on the same directory, opened by its first write
        self.model: dict[int, tuple[np.ndarray, dict | None, str | None]] = {}
        self.checks = 0

    def _step(self, name: str) -> None:
        WritePathMachine.steps += 1  # on the base class: the benchmark runs seeded subclasses
        WritePathMachine.rules_run[name] += 1

    # -- vectors as the collection stores them ------------------------------------------------
    def _vectors(self, seed: int, n: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((n, DIM))
        if self.metric == "ip":
            x *= rng.uniform(0.5, 2.0, (n, 1))  # varied norms: ip self-search is not trivial
        return x.astype(np.float32)

    def _stored(self, x: np.ndarray) -> np.ndarray:
        if self.metric != "cosine":
            return x.copy()
        norms = np.linalg.norm(x.astype(np.float64), axis=1, keepdims=True)
        return np.ascontiguousarray(x / norms, dtype=np.float32)

    def _expect_unchanged(self, call, error=InvalidInputError) -> None:
        """``call`` must raise ``error`` (a slimvec error); the invariants then check that the
        collection still equals the unchanged model."""
        try:
            call()
        except error:
            return
        raise AssertionError(f"{call} did not raise {error.__name__}")

    # -- setup ---------------------------------------------------------------------------------
    @initialize(metric=st.sampled_from(["cosine", "ip"]), spec=st.sampled_from(SPECS))
    def create(self, metric: str, spec: str) -> None:
        self.metric = metric
        self.col = slimvec.create(self.path, dim=DIM, metric=metric, spec=spec)

    def teardown(self) -> None:
        for handle in (self.col, self.other):
            if handle is not None:
                handle.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- writes --------------------------------------------------------------------------------
    def _add(self, col, batch) -> None:
        seed, n, ids, metas, texts = batch
        x = self._vectors(seed, n)
        if ids is not None and any(i in self.model for i in ids):
            self._expect_unchanged(
                lambda: col.add(x, ids=ids, metadata=metas, texts=texts), DuplicateIdError
            )
            return
        got = col.add(x, ids=ids, metadata=metas, texts=texts)
        got = [int(i) for i in got]
        if ids is not None:
            assert got == ids
        assert len(set(got)) == n and not set(got) & set(self.model), got
        stored = self._stored(x)
        for j, i in enumerate(got):
            self.model[i] = (
                stored[j],
                None if metas is None else metas[j],
                None if texts is None else texts[j],
            )

    def _upsert(self, col, batch) -> None:
        seed, n, ids, metas, texts = batch
        x = self._vectors(seed, n)
        got = col.upsert(x, ids=ids, metadata=metas, texts=texts)
        assert [int(i) for i in got] == ids
        stored = self._stored(x)
        for j, i in enumerate(ids):
            self.model[i] = (
                stored[j],
                None if metas is None else metas[j],
                None if texts is None else texts[j],
            )

    def _delete(self, col, ids: list[int]) -> None:
        if not all(i in self.model for i in ids):
            self._expect_unchanged(lambda: col.delete(ids))
            return
        assert col.delete(ids) == len(set(ids))
        for i in set(ids):
            del self.model[i]

    def _update(self, col, ids: list[int], metas: list) -> None:
        if not all(i in self.model for i in ids):
            self._expect_unchanged(lambda: col.update_metadata(ids, metas))
            return
        assert col.update_metadata(ids, metas) == len(ids)
        for i, m in zip(ids, metas):
            v, _, t = self.model[i]
            self.model[i] = (v, m, t)

    def _live_or_not(self, data, unique: bool) -> list[int]:
        """A few ids, mostly live (sometimes one that is not, or a repeat)."""
        pool = sorted(self.model) if self.model else [0]
        ids = data.draw(
            st.lists(
                st.one_of(st.sampled_from(pool), st.integers(0, ID_SPACE - 1))
                if data.draw(st.integers(0, 4)) == 0
                else st.sampled_from(pool),
                min_size=1,
                max_size=4,
                unique=unique,
            )
        )
        return ids

    @rule(batch=batches())
    def add(self, batch) -> None:
        self._step("add")
        self._add(self.col, batch)

    @rule(seed=st.integers(0, 2**32 - 1), n=st.integers(*BIG), given=st.booleans())
    def add_many(self, seed, n, given) -> None:
        """A batch past the log's limit: committed as a segment (merges follow)."""
        self._step("add_many")
        rng = np.random.default_rng(seed)
        ids = sorted(set(range(ID_SPACE * 2, ID_SPACE * 20)) - set(self.model)) if given else []
        ids = rng.choice(ids, n, replace=False).tolist() if len(ids) >= n else None
        metas = [{"g": int(rng.integers(0, 4)), "t": f"m{i}"} if i % 7 else None for i in range(n)]
        self._add(self.col, (seed, n, ids, metas, [f"many {i}" for i in range(n)]))

    @rule(field=st.sampled_from(["g", "t"]))
    def create_index(self, field) -> None:
        """A sorted index of a metadata field: filtered searches take other plans."""
        self._step("create_index")
        self.col.create_index(field)

    @rule(batch=batches(ids="always"))
    def upsert(self, batch) -> None:
        self._step("upsert")
        self._upsert(self.col, batch)

    @rule(data=st.data())
    def delete(self, data) -> None:
        self._step("delete")
        self._delete(self.col, self._live_or_not(data, unique=False))

    @rule(flt=filters_st)
    def delete_filter(self, flt) -> None:
        self._step("delete_filter")
        gone = [i for i, (_, m, _) in self.model.items() if matches(m, flt)]
        assert self.col.delete(filter=flt) == len(gone), flt
        for i in gone:
            del self.model[i]

    @rule(data=st.data())
    def update_metadata(self, data) -> None:
        self._step("update_metadata")
        ids = self._live_or_not(data, unique=True)
        metas = data.draw(st.lists(meta_st, min_size=len(ids), max_size=len(ids)))
        self._update(self.col, ids, metas)

    @rule(flt=filters_st, g=st.sampled_from(G_VALUES), t=texts_st)
    def merge_metadata(self, flt, g, t) -> None:
        self._step("merge_metadata")
        merge = {"g": g, "t": t}
        chosen = [i for i, (_, m, _) in self.model.items() if matches(m, flt)]
        assert self.col.update_metadata(filter=flt, merge=merge) == len(chosen), flt
        for i in chosen:
            v, m, text = self.model[i]
            self.model[i] = (v, {**(m or {}), **merge}, text)

    @rule()
    def flush(self) -> None:
        self._step("flush")
        self.col.flush()

    @rule()
    def compact(self) -> None:
        self._step("compact")
        self.col.compact()

    @rule(both=st.booleans())
    def reopen(self, both: bool) -> None:
        self._step("reopen")
        self.col.close()
        if both and self.other is not None:
            self.other.close()
            self.other = None
        self.col = slimvec.open(self.path)

    @rule(
        op=st.sampled_from(["add", "upsert", "delete", "update", "flush", "compact"]),
        batch=batches(ids="always", big=False),
        data=st.data(),
    )
    def second_handle_writes(self, op, batch, data) -> None:
        """Another handle on the directory writes; the first sees it at its next call."""
        self._step("second_handle")
        if self.other is None:
            self.other = slimvec.open(self.path)
        if op == "add":
            self._add(self.other, batch)
        elif op == "upsert":
            self._upsert(self.other, batch)
        elif op == "delete":
            self._delete(self.other, self._live_or_not(data, unique=False))
        elif op == "update":
            ids = self._live_or_not(data, unique=True)
            self._update(self.other, ids, [{"g": 1, "t": "other"}] * len(ids))
        else:
            getattr(self.other, op)()

    @rule(
        kind=st.sampled_from(["zero", "nan", "dim", "surrogate", "key", "id", "repeat", "texts"]),
        big=st.booleans(),
        seed=st.integers(0, 2**32 - 1),
    )
    def invalid_add(self, kind, big, seed) -> None:
        """A bad row anywhere in a batch, small or large: an error and nothing written."""
        self._step("invalid_add")
        n = BIG[0] + 3 if big else 3
        x = self._vectors(seed, n)
        ids = list(range(ID_SPACE * 10 + seed % 1000, ID_SPACE * 10 + seed % 1000 + n))
        metas, texts = [{"g": 1, "t": "x"}] * n, ["ok"] * n
        if kind == "zero":
            if self.metric != "cosine":
                return
            x[-1] = 0
        elif kind == "nan":
            x[-1, 0] = np.nan
        elif kind == "dim":
            x = np.hstack([x, x[:, :1]])
        elif kind == "surrogate":
            texts = [*texts[:-1], "bad \ud800"]
        elif kind == "key":
            metas = [*metas[:-1], {1: "int key"}]
        elif kind == "id":
            ids[-1] = -1
        elif kind == "repeat":
            ids[-1] = ids[0]
        else:
            texts = texts[:-1]
        self._expect_unchanged(lambda: self.col.add(x, ids=ids, metadata=metas, texts=texts))

    # -- invariants ----------------------------------------------------------------------------
    @invariant()
    def agrees_with_model(self) -> None:
        if self.col is None:
            return
        self.checks += 1
        col, model = self.col, self.model
        assert len(col) == len(model)
        assert col.count() == len(model)
        if self.other is not None:  # the second handle sees the first's writes too
            assert self.other.count() == len(model)
            if self.checks % 4 == 0:
                assert sorted(self.other.get(limit=None).ids.tolist()) == sorted(model)

        got = col.get(limit=None, vectors=True)
        ids = [int(i) for i in got.ids]
        assert len(ids) == len(set(ids)), "duplicate ids in get()"
        assert set(ids) == set(model)
        for i, v, m, t in zip(ids, got.vectors, got.metadata, got.texts):
            mv, mm, mt = model[i]
            np.testing.assert_allclose(v, mv, rtol=1e-6, atol=1e-6)
            assert m == mm, (i, m, mm)
            assert t == mt, (i, t, mt)
        if not model:
            assert col.search(np.ones(DIM, np.float32), k=3, exact=True).ids.tolist() == [
                [-1, -1, -1]
            ]
            return

        rng = random.Random(self.checks)
        sample = rng.sample(sorted(model), min(3, len(model)))
        for i in sample:  # one id at a time, through every reading call
            one = col.get([i], vectors=True)
            assert one.ids.tolist() == [i]
            np.testing.assert_allclose(one.vectors[0], model[i][0], rtol=1e-6, atol=1e-6)
            assert one.metadata == [model[i][1]] == col.metadata([i])
            assert one.texts == [model[i][2]] == col.texts([i])

        all_ids = np.array(sorted(model))
        matrix = np.stack([model[i][0] for i in all_ids]).astype(np.float64)
        queries = np.stack([model[i][0] for i in sample])
        res = col.search(queries, k=1, exact=True)
        scores = queries.astype(np.float64) @ matrix.T
        for row, i in enumerate(sample):
            best = scores[row].max()
            ties = set(all_ids[scores[row] >= best - TOL].tolist())
            assert int(res.ids[row, 0]) in ties, (i, res.ids[row, 0], ties)
            if self.metric == "cosine":
                assert i in ties  # the model's own sanity: a unit vector is its own best match
            assert abs(float(res.scores[row, 0]) - best) <= TOL

        flt = rng.choice(
            [
                {"g": rng.choice(G_VALUES)},
                {"g": {"$ne": rng.choice(G_VALUES)}},
                {"g": {"$in": [0, 2]}},
                {"g": {"$exists": False}},
            ]
        )
        k = rng.choice([1, 3, 10])
        q = np.random.default_rng(self.checks).standard_normal(DIM).astype(np.float32)
        self._check_filtered(q, k, flt, all_ids, matrix)
        assert col.count(filter=flt) == sum(matches(model[i][1], flt) for i in all_ids)

        approx = col.search(q, k=10)  # the funnel: never a deleted or unknown id
        assert set(approx.ids[0][approx.ids[0] >= 0].tolist()) <= set(model)
        approx = col.search(q, k=10, filter=flt)
        for i in approx.ids[0][approx.ids[0] >= 0].tolist():
            assert i in model and matches(model[i][1], flt), (i, flt)

    def _check_filtered(self, q, k, flt, all_ids, matrix) -> None:
        qq = q.astype(np.float64)
        if self.metric == "cosine":
            qq = qq / np.linalg.norm(qq)
        allowed = np.array([matches(self.model[i][1], flt) for i in all_ids])
        scores = matrix[allowed] @ qq
        ids = all_ids[allowed]
        order = np.argsort(-scores, kind="stable")[:k]
        res = self.col.search(q, k=k, exact=True, filter=flt)
        got = [int(i) for i in res.ids[0] if i >= 0]
        assert len(got) == len(order), (flt, got, ids[order])
        assert len(set(got)) == len(got)
        if not len(order):
            return
        kth = scores[order[-1]]
        must = set(ids[scores > kth + TOL].tolist())  # strictly better than the k-th: required
        may = set(ids[scores >= kth - TOL].tolist())  # tied with the k-th: allowed
        assert must <= set(got) <= may, (flt, k, got, ids[order].tolist())
        np.testing.assert_allclose(
            res.scores[0, : len(got)], scores[order], rtol=0, atol=TOL, err_msg=str(flt)
        )
        assert not math.isnan(float(res.scores[0, 0]))


#: The fast profile: reproducible (derandomised, no example database), well under a minute.
FAST = settings(
    max_examples=20,
    stateful_step_count=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)


def test_write_path_agrees_with_a_model():
    run_state_machine_as_test(WritePathMachine, settings=FAST)


def test_an_empty_text_survives_a_flush(tmp_path):
    """Found by the machine: a log holding only empty texts ("") was flushed as "no texts",
    so ``texts()`` answered None after a flush or compaction."""
    col = slimvec.create(tmp_path / "c", dim=DIM)
    col.add(np.ones((1, DIM), np.float32), ids=[0], texts=[""])
    col.add(np.arange(1, DIM + 1, dtype=np.float32)[None], ids=[1])
    col.flush()
    assert col.texts([0, 1]) == ["", None] == col.get([0, 1]).texts
    col.compact()
    assert slimvec.open(tmp_path / "c").texts([0, 1]) == ["", None]
