"""Model upgrades: move a collection to a new embedding model while search keeps working.

``col.begin_upgrade(new_encoder)`` creates the new model's space as a full child collection
(own manifest, segments and crash safety) and fits, on a paired sample, a :class:`Bridge` each
way: an adapter new → old (and old → new) plus a calibrator putting adapted scores on the other
model's scale. From then on the collection is *mixed*: new documents go to the new space;
text queries search the new space natively and the old space with the old model, the old
scores calibrated onto the new scale and backfilled documents scored by both models (measured
best: see ``BLEND_OLD_WEIGHT`` and benchmarks/results/upgrade.md), or, with
``keep_old_encoder=False``, through the adapter with calibrated scores (for a retired old
model). Query *vectors* work from either model: ``col.search(old_model_vectors)`` reaches the
backfilled documents through the old → new bridge, ``upgrade.search_vectors(new_vectors)`` the
old documents through the new → old one. ``backfill`` re-embeds old documents' stored texts a
batch at a time (refitting both bridges on the backfilled pairs as they grow), and ``finish``
makes the new space the collection: ``slimvec.open(parent)`` opens it from then on.

On-disk layout (inside the parent collection's directory)::

    MANIFEST.json                     extra["upgrade"] = {space, files, identities, report, ...}
    spaces/<gen>/                     the new model's space: a complete collection
    upgrade-<gen>-to_old-adapter.npz  adapter new → old (arrays only, no pickle)
    upgrade-<gen>-to_old-calibration.npz  its score calibrator; to_new-* the reverse bridge
    upgrade-<gen>-dual-calibration.npz    old-model scores onto the new model's scale

After ``finish`` the parent's manifest holds ``extra["moved_to"] = "spaces/<gen>"`` and no
segments; the old segments, texts and upgrade files are removed after that commit.

Crash safety: every step commits through one atomic manifest replace (the parent's or the
child's). ``begin_upgrade`` writes the child directory and npz files first and commits the
parent manifest last, so a crash before it leaves the parent untouched (the orphan directory is
removed by the next ``begin_upgrade``). Ids for new documents are *reserved* in the parent's
manifest (``next_id`` moved, committed) before the child stores them, so every id in the child
is below the parent's ``next_id`` and an old-space add can never reuse one. ``backfill`` adds a
batch to the child (commit 1) and then deletes it from the parent (commit 2); a crash between
the two leaves ids live in both spaces, which searches merge by id (the new space wins) and the
next ``backfill`` finishes by deleting them from the parent: no duplicates, no losses.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from slimvec.compat.adapters import Adapter, fit_adapter, load_adapter
from slimvec.compat.calibration import ScoreCalibrator, probe_scores
from slimvec.compat.sample import (
    PairedSample,
    draw_sample,
    stored_vectors,
    unit,
    without_text,
)
from slimvec.compat.spaces import SpaceIdentity
from slimvec.engine.arguments import SearchParams
from slimvec.errors import DuplicateIdError, InvalidInputError
from slimvec.kernels.topk import pad_results, select_top
from slimvec.search.funnel import ORIGINAL
from slimvec.search.result import GetResult, SearchResult
from slimvec.store.files import CHECKSUM_SUFFIX, load_arrays, save_arrays
from slimvec.store.meta import MetaStore
from slimvec.validation import as_ids, as_texts, check_k

#: The two bridges of an upgrade: adapter + calibrator new → old, and old → new.
DIRECTIONS = ("to_old", "to_new")
SPACES_DIR = "spaces"
FILE_PREFIX = "upgrade-"
#: Calibration as measured best for the adapter path: quantile matching of each probe's top 20.
CALIBRATION_TOP = 20
#: Probe/document split of the paired sample when fitting the calibrator on a large sample.
CALIBRATION_PROBES = 500
CALIBRATION_DOCS = 4_000
#: While a backfill is under way, queries given in both models score each document both models
#: have embedded (backfilled ones: their old vectors stay until ``finish``) by a blend, new
#: score + BLEND_OLD_WEIGHT x (calibrated old score - new score), over the new space's top
#: BLEND_DEPTH x k. Debian set, 25/50/75% backfilled, recall@10 against plain merging: MiniLM →
#: e5 +0.8/+1.4/+1.8 points (above the old model, where plain merging dips below it), MiniLM →
#: fine-tuned MiniLM +0.2/+0.4/+0.05, MiniLM → Gemma +0.3/+0.4/+0.35 (weight 0.3 was as good
#: mid-way but worse at 75%; once the backfill is complete the new model alone is best).
BLEND_OLD_WEIGHT = 0.2
BLEND_DEPTH = 4
#: Pairs (query, backfilled candidate) scored per block by the blend (bounds the gather).
BLEND_BLOCK = 65_536
#: ``backfill`` refits the adapter each time the backfilled pairs reach this many times the
#: pairs it was last fitted on (so a full backfill refits about log2(n / sample) times).
REFIT_GROWTH = 2.0


@dataclass
class Bridge:
    """One direction across an upgrade: an adapter from one model's space into the other's, and
    a calibrator putting the adapted scores on the other model's native scale (so they merge)."""

    adapter: Adapter
    calibrator: ScoreCalibrator

    @classmethod
    def fit(cls, source: np.ndarray, target: np.ndarray, kind: str, seed: int):
        """Fit on paired rows (row i = one text in both models); returns (bridge, report)."""
        adapter, report = fit_adapter(source, target, kind=kind, seed=seed)  # type: ignore[arg-type]
        return cls(adapter, _fit_calibrator(adapter, source, target, seed)), report

    def save(self, directory: Path, stem: str) -> dict[str, str]:
        files = {"adapter": f"{stem}-adapter.npz", "calibration": f"{stem}-calibration.npz"}
        save_arrays(directory / files["adapter"], self.adapter.state())
        save_arrays(directory / files["calibration"], self.calibrator.state())
        return files

    @classmethod
    def load(cls, directory: Path, files: dict[str, str]) -> Bridge:
        adapter = load_adapter(load_arrays(directory / files["adapter"]))
        return cls(adapter, _load_calibrator(directory / files["calibration"]))

    def search(self, space: Any, queries: np.ndarray, k: int, params: SearchParams):
        """Top-``k`` of ``space`` for the other model's ``queries``, calibrated scores."""
        found = space.search_rows(self.adapter.transform(queries), k, params)
        return _calibrated(found, self.calibrator)


def _calibrated(res: Any, calibrator: ScoreCalibrator) -> Any:
    """``res`` (a SearchResult) with its finite scores mapped by ``calibrator``."""
    finite = np.isfinite(res.scores)
    calibrated = calibrator.transform(np.where(finite, res.scores, 0))
    scores = np.where(finite, calibrated, -np.inf).astype(np.float32)
    return type(res)(res.ids, scores, res.explain)


def _fit_bridges(new: np.ndarray, old: np.ndarray, kind: str, seed: int):
    """Both bridges from paired rows -> ({direction: Bridge}, {direction: report dict})."""
    to_old, report_old = Bridge.fit(new, old, kind, seed)
    to_new, report_new = Bridge.fit(old, new, kind, seed)
    return {"to_old": to_old, "to_new": to_new}, {
        "to_old": report_old.to_dict(),
        "to_new": report_new.to_dict(),
    }


def _save_bridges(col: Any, bridges: dict[str, Bridge], generation: int) -> dict[str, dict]:
    return {
        way: bridge.save(col.path, f"{FILE_PREFIX}{generation:06d}-{way}")
        for way, bridge in bridges.items()
    }


def _fit_dual_calibrator(sample: PairedSample) -> ScoreCalibrator:
    """Old-model scores onto the new model's scale, for merging the two models' native results
    while both encoders are in use: the same query probes scored against the sample documents
    in each space (document probes, self-matches dropped, when only vectors were given)."""
    if len(sample.new_queries):
        source, target = probe_scores(
            sample.old_queries, sample.old_docs, sample.new_queries, sample.new_docs
        )
    else:
        docs = slice(0, CALIBRATION_PROBES + 1)
        old, new = sample.old_docs[docs], sample.new_docs[docs]
        source, target = probe_scores(old, old, new, new, exclude_self=True)
    return ScoreCalibrator("quantile", top=CALIBRATION_TOP).fit(source, target)


def _save_dual(col: Any, calibrator: ScoreCalibrator, generation: int) -> dict[str, str]:
    name = f"{FILE_PREFIX}{generation:06d}-dual-calibration.npz"
    save_arrays(col.path / name, calibrator.state())
    return {"calibration": name}


def _load_calibrator(path: Path) -> ScoreCalibrator:
    calibrator = ScoreCalibrator()
    calibrator.load_state(load_arrays(path))
    return calibrator


def _file_names(record: dict[str, Any]) -> list[str]:
    return [name for group in record["files"].values() for name in group.values()]


@dataclass
class UpgradeStatus:
    """Where an upgrade stands (``to_dict`` for JSON)."""

    old_count: int  # live vectors in the old space
    new_count: int  # live vectors in the new space (backfilled + added since)
    in_both: int  # ids moved by an interrupted backfill, still to delete from the old space
    backfilled: float  # fraction of the documents the old space held at begin_upgrade
    adapter: str
    keep_old_encoder: bool
    missing_texts: int  # old-space documents without stored text (backfill cannot move them)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


# -- begin ----------------------------------------------------------------------------------
def begin_upgrade(
    col: Any,
    encoder: Any,
    *,
    sample_texts: Sequence[str] | None = None,
    sample_pairs: tuple[Any, Any] | None = None,
    adapter: str = "auto",
    spec: str | None = None,
    keep_old_encoder: bool = True,
    seed: int = 0,
) -> Upgrade:
    """Start moving ``col`` to the model ``encoder`` (a name, path or ``Encoder``); returns
    the upgrade over a new handle on the old space (``col`` refuses calls from then on).

    Both bridges (adapter + score calibrator, new → old and old → new) and the calibrator that
    merges the two models' native scores are fitted on a paired sample
    (:func:`slimvec.compat.sample.draw_sample`): ``sample_pairs = (new_vectors, old_vectors)``
    (row i = one text), or ``sample_texts`` embedded by both models, or by default a seeded ~5%
    (200 to 5,000) of the stored documents, their old vectors read from the collection. With
    texts, up to 1,000 of their sentences are also embedded as *queries* by both models (query
    probes). ``spec`` is the new space's pipeline (default: the collection's).
    ``keep_old_encoder`` searches the old space with the old model (best measured); otherwise
    through the adapter. The returned :class:`Upgrade`'s ``report`` says how good the adapter
    (new → old) is on held-out pairs. An empty collection (or one without texts) can begin an
    upgrade only with ``sample_texts`` or ``sample_pairs`` to fit the bridges on.
    """
    from slimvec.encoders import get_encoder

    sampled = sample_texts is not None or sample_pairs is not None
    _check_can_begin(col, sampled)
    new_encoder = get_encoder(encoder)
    old_id = SpaceIdentity.from_dict(col.manifest.extra["encoder"])
    new_id = SpaceIdentity.from_encoder(new_encoder)
    if old_id.compatible(new_id):
        raise InvalidInputError(
            f"{new_id.label} is the model this collection already uses (same fingerprint); "
            f"an upgrade needs a different model"
        )
    if sample_pairs is not None and sample_texts is not None:
        raise InvalidInputError("give sample_pairs or sample_texts, not both")
    if not isinstance(keep_old_encoder, bool):
        raise InvalidInputError(f"keep_old_encoder must be True or False, got {keep_old_encoder!r}")
    sample = draw_sample(col, new_encoder, sample_texts, sample_pairs, seed)
    bridges, reports = _fit_bridges(sample.new, sample.old, adapter, seed)
    dual = _fit_dual_calibrator(sample)

    child = None
    with col.transaction() as m:
        _check_can_begin(col, sampled)  # another process may have begun meanwhile
        generation = m.generation + 1
        _remove_orphans(col.path, m.extra)
        space = f"{SPACES_DIR}/{generation:06d}"
        try:
            child = type(col).create(
                col.path / space,
                metric=col.metric,
                spec=spec or col.spec,
                encoder=new_encoder,
                keyword=m.extra.get("keyword_options"),
            )
            child.set_target_recall(m.extra.get("target_recall"))  # kept through finish
            m.extra["upgrade"] = {
                "space": space,
                "files": {
                    **_save_bridges(col, bridges, generation),
                    "dual": _save_dual(col, dual, generation),
                },
                "old": old_id.to_dict(),
                "new": new_id.to_dict(),
                "report": reports["to_old"],
                "reverse_report": reports["to_new"],
                "keep_old_encoder": keep_old_encoder,
                "adapter_kind": adapter,  # as asked ("auto" chooses); refits ask the same
                "sample": {
                    "source": sample.source,
                    "pairs": len(sample.new_docs),
                    "query_probes": len(sample.new_queries),
                },
                "calibration": {"method": "quantile", "top": CALIBRATION_TOP},
                "old_count_at_begin": len(col),
            }
            m.commit(col.path)  # the commit point
        except BaseException:
            m.extra.pop("upgrade", None)
            if child is not None:
                child.close()
            _remove_orphans(col.path, m.extra)
            raise
    old_space = type(col)(col.path, encoder=col.loaded_encoder, in_upgrade=True)
    return Upgrade(old_space, child, bridges, dual)


def _check_can_begin(col: Any, sampled: bool) -> None:
    extra = col.manifest.extra
    where = repr(str(col.path))
    if "multivector" in extra:
        raise InvalidInputError(f"{where} is a multi-vector collection; upgrades need one vector")
    if extra.get("moved_to"):
        raise InvalidInputError(
            f"{where} was already upgraded; open it with slimvec.open to get the current space"
        )
    if "upgrade" in extra:
        raise InvalidInputError(
            f"a model upgrade of {where} is already in progress; backfill() and "
            f"finish_upgrade() it first"
        )
    if extra.get("encoder") is None:
        raise InvalidInputError(
            f"collection {where} has no encoder: it holds vectors without a model to re-embed "
            f"with, so it cannot be upgraded in place; embed your texts with the new model "
            f"into a new collection"
        )
    if sampled:  # the bridges are fitted on the caller's sample
        return
    if len(col) == 0:
        raise InvalidInputError(
            f"collection {where} is empty: there is nothing to upgrade; create a new "
            f"collection with the new encoder (or give sample_texts to fit the bridges on)"
        )
    live = col.live_ids()
    if len(without_text(col, live)) == len(live):
        raise InvalidInputError(
            f"collection {where} stores no texts, so its documents cannot be re-embedded with "
            f"a new model; add documents with add_texts(...) or add(vectors, texts=...)"
        )


def _fit_calibrator(adapter: Adapter, source: np.ndarray, target: np.ndarray, seed: int):
    """Quantile calibration (top 20 per probe) of adapted scores (source-model probes through
    the adapter against target-model documents) onto native source-model scores, with the
    sample as probes (benchmarks/results/upgrade.md: 0.63-0.93 recall@10 vs 0.47-0.90 raw).
    Probes and documents are disjoint on large samples, self-matches dropped on small."""
    source = unit(source)
    adapted, target = adapter.transform(source), unit(target)
    if len(source) <= CALIBRATION_PROBES + 1:
        got, wanted = probe_scores(adapted, target, source, source, exclude_self=True)
    else:
        perm = np.random.default_rng(seed).permutation(len(source))
        probes, docs = perm[:CALIBRATION_PROBES], perm[CALIBRATION_PROBES:][:CALIBRATION_DOCS]
        got, wanted = probe_scores(adapted[probes], target[docs], source[probes], source[docs])
    return ScoreCalibrator("quantile", top=CALIBRATION_TOP).fit(got, wanted)


def _remove_orphans(directory: Path, extra: dict[str, Any]) -> None:
    """Under the parent's write lock: upgrade files no committed record points at (written by
    a ``begin_upgrade`` or ``refit_adapter`` that crashed before its commit, or left by
    ``finish``), and a new space no upgrade or move points at (``extra``: the manifest's)."""
    kept = set(_file_names(extra["upgrade"])) if "upgrade" in extra else set()
    if "upgrade" not in extra and not extra.get("moved_to"):
        shutil.rmtree(directory / SPACES_DIR, ignore_errors=True)
    for leftover in directory.glob(f"{FILE_PREFIX}*.npz*"):  # with their checksum sidecars
        if leftover.name.removesuffix(CHECKSUM_SUFFIX) not in kept:
            leftover.unlink(missing_ok=True)


# -- the upgrade in progress -----------------------------------------------------------------
class Upgrade:
    """A model upgrade in progress: the old space (the parent collection) and the new space.

    An ``UpgradingCollection`` holds one (``col.upgrade``); ``old_space`` is a handle on the
    parent collection, ``new_space`` one on the child collection of the new model.
    """

    def __init__(self, col: Any, child: Any, bridges: dict[str, Bridge], dual: ScoreCalibrator):
        self.old_space = col
        self.new_space = child
        self.to_old, self.to_new = bridges["to_old"], bridges["to_new"]
        self.dual_calibrator = dual  # old-model scores onto the new model's, both encoders in use
        self._overlap_cache: tuple[Any, np.ndarray] | None = None
        self._paired_cache: tuple[Any, np.ndarray, np.ndarray] | None = None

    @classmethod
    def load(cls, col: Any) -> Upgrade:
        """The upgrade recorded in ``col``'s manifest (``extra["upgrade"]``)."""
        record = col.manifest.extra.get("upgrade")
        if not record:
            raise InvalidInputError("no model upgrade in progress; start one with begin_upgrade")
        child = type(col)(col.path / record["space"])
        bridges = {way: Bridge.load(col.path, record["files"][way]) for way in DIRECTIONS}
        dual = _load_calibrator(col.path / record["files"]["dual"]["calibration"])
        return cls(col, child, bridges, dual)

    def close(self) -> None:
        """Release the new space's files (the upgrading collection's ``close`` calls this)."""
        self.new_space.close()

    @property
    def spaces(self) -> tuple[Any, Any]:
        """(old space, new space)."""
        return self.old_space, self.new_space

    # -- documents in either space ----------------------------------------------------------
    def locate(self, ids: np.ndarray, verb: str) -> tuple[np.ndarray, np.ndarray]:
        """Masks of ``ids`` live in the old space and of those live (only) in the new one;
        ids in neither: the error a plain collection gives ("nothing was ``verb``")."""
        _, in_old = self.old_space.rows_of(ids)
        _, in_new = self.new_space.rows_of(ids)
        in_new &= ~in_old
        unknown = ids[~(in_old | in_new)]
        if len(unknown):
            raise InvalidInputError(
                f"ids not in the collection: {unknown[:10].tolist()}; nothing was {verb}"
            )
        return in_old, in_new

    def per_id(self, ids: Any, what: str) -> list:
        """``texts`` or ``metadata`` of each id from the space holding it (None if neither)."""
        found = getattr(self.old_space, what)(ids)  # checks the ids as a plain collection does
        wanted = np.atleast_1d(np.asarray(ids)).astype(np.int64)
        rest = np.flatnonzero(~self.old_space.rows_of(wanted)[1])
        for i, value in zip(rest.tolist(), getattr(self.new_space, what)(wanted[rest])):
            found[i] = value
        return found

    def get_ids(
        self,
        ids: Any,
        filter: Any,  # noqa: A002
        limit: int | None,
        offset: int,
        vectors: bool | None,
    ) -> GetResult:
        """``get(ids=...)`` over both spaces, in the order asked, each id once. Vectors: the
        old model's; by default left out when a document is in the new space already."""
        old = self.old_space.get(ids, filter, None, 0, vectors is not False)
        new = self.new_space.get(ids, filter, None, 0, False)
        new_only = ~np.isin(new.ids, old.ids)
        joined = self.joined(old, _rows(new, np.flatnonzero(new_only)))
        asked = np.atleast_1d(np.asarray(ids)).astype(np.int64)
        first = {int(i): n for n, i in reversed(list(enumerate(asked.tolist())))}
        order = np.argsort([first[int(i)] for i in joined.ids], kind="stable")
        page = _rows(joined, order[offset : None if limit is None else offset + limit])
        in_new = int(np.isin(page.ids, new.ids[new_only]).sum())
        if vectors and in_new:
            raise InvalidInputError(self.vectors_refusal(in_new))
        return page if vectors or not in_new else GetResult(page.ids, page.metadata, page.texts)

    def joined(self, first: GetResult, second: GetResult) -> GetResult:
        """The old space's rows, then the new space's (which carry no vectors)."""
        return GetResult(
            np.concatenate([first.ids, second.ids]).astype(np.int64),
            [*first.metadata, *second.metadata],
            [*first.texts, *second.texts],
            first.vectors if not len(second.ids) else None,
        )

    def vectors_refusal(self, n: int) -> str:
        return (
            f"{n} of these documents are in the new model's space already, where vectors have "
            f"{self.new_space.dim} dims, not the collection's {self.old_space.dim}; read them "
            f"with col.upgrade.new_space.get(ids, vectors=True), or leave vectors out"
        )

    @property
    def has_backfilled_pairs(self) -> bool:
        """Whether the old space still holds old vectors of backfilled documents."""
        return len(self._backfilled_rows()) > 0

    # -- description ------------------------------------------------------------------------
    @property
    def record(self) -> dict[str, Any]:
        record = self.old_space.manifest.extra.get("upgrade")
        if record is None:
            raise InvalidInputError(
                "this upgrade is finished: the collection is the new space now (its manifest "
                "keeps the adapter report under extra['upgraded_from'])"
            )
        return record

    @property
    def report(self) -> dict[str, Any]:
        """The adapter's held-out quality (see ``slimvec.compat.adapters.AdapterReport``)."""
        return self.record["report"]

    @property
    def adapter(self) -> Adapter:
        """The adapter new → old (new-model queries over the old documents)."""
        return self.to_old.adapter

    @property
    def calibrator(self) -> ScoreCalibrator:
        return self.to_old.calibrator

    @property
    def keep_old_encoder(self) -> bool:
        return bool(self.record["keep_old_encoder"])

    @property
    def encoder(self) -> Any:
        """The new model (loaded by name unless attached with :meth:`use_encoder`)."""
        return self.new_space.encoder

    def use_encoder(self, encoder: Any) -> Upgrade:
        """Attach the new model's ``Encoder`` object (needed for models not loadable by name,
        e.g. after reopening); it must be the model the upgrade began with."""
        from slimvec.encoders import get_encoder

        self.new_space.attach_encoder(get_encoder(encoder))
        return self

    def status(self) -> UpgradeStatus:
        old_live = self.old_space.live_ids()
        at_begin = max(int(self.record["old_count_at_begin"]), 1)
        return UpgradeStatus(
            old_count=len(self.old_space),
            new_count=len(self.new_space),
            in_both=len(self._overlap()),
            backfilled=float(np.clip(1 - len(old_live) / at_begin, 0, 1)),
            adapter=self.adapter.kind,
            keep_old_encoder=self.keep_old_encoder,
            missing_texts=len(without_text(self.old_space, old_live)),
        )

    def describe(self) -> dict[str, Any]:
        """The models, progress and adapter quality, for ``info`` and the CLI."""
        record = self.record
        return {
            "old_model": record["old"]["name"],
            "new_model": record["new"]["name"],
            **self.status().to_dict(),
            "adapter_recall": record["report"]["recall"],
            "adapter_pairs": record["report"]["n_pairs"],
        }

    def __repr__(self) -> str:
        r = self.record
        return (
            f"Upgrade({r['old']['name']!r} → {r['new']['name']!r}, old={len(self.old_space)}, "
            f"new={len(self.new_space)})"
        )

    # -- writing ----------------------------------------------------------------------------
    def add_texts(
        self,
        texts: Sequence[str],
        ids: Any = None,
        metadata: Sequence[dict[str, Any] | None] | None = None,
        batch_size: int | None = None,
    ) -> np.ndarray:
        """Embed ``texts`` with the new model into the new space; returns their ids.

        Ids are unique across both spaces: given ids must not be live in the old space, and
        assigned ones come from the parent's ``next_id``, reserved (committed) in the parent's
        manifest before the child stores them.
        """
        texts = as_texts(texts)
        given = None if ids is None else as_ids(ids, len(texts))
        vectors = self.encoder.encode(texts, kind="doc", batch_size=batch_size)
        col = self.old_space
        with col.transaction() as m:
            if given is None:
                start = max(col.next_id, self.new_space.next_id)  # log adds included
                new_ids = np.arange(start, start + len(texts), dtype=np.int64)
            else:
                live = np.concatenate([col.live_ids(), self.new_space.live_ids()])
                clash = given[np.isin(given, live)]
                if len(clash):
                    raise DuplicateIdError(
                        f"ids already in the collection (old or new space): "
                        f"{clash[:10].tolist()}; delete them first or use new ids"
                    )
                new_ids = given
            reserved = int(new_ids.max()) + 1
            if reserved > m.next_id:
                m.next_id = reserved
                m.commit(col.path)
            return self.new_space.add(vectors, ids=new_ids, metadata=metadata, texts=texts)

    def delete(self, ids: Any) -> int:
        """Delete ids from whichever space holds them; returns how many documents went."""
        wanted = np.unique(as_ids(np.atleast_1d(np.asarray(ids)), np.size(ids)))
        in_old = wanted[np.isin(wanted, self.old_space.live_ids())]
        in_new = wanted[np.isin(wanted, self.new_space.live_ids())]
        unknown = np.setdiff1d(wanted, np.union1d(in_old, in_new))
        if len(unknown):
            raise InvalidInputError(
                f"ids not in the collection: {unknown[:10].tolist()}; nothing was deleted"
            )
        if len(in_new):
            self.new_space.delete(in_new)
        if len(in_old):
            self.old_space.delete(in_old)
        return len(wanted)

    def backfill(
        self,
        batch_size: int = 256,
        limit: int | None = None,
        progress: bool | None = None,
        refit: bool = True,
    ) -> int:
        """Re-embed old documents' stored texts with the new model, ``batch_size`` per commit.

        Each batch is added to the new space (same ids, texts and metadata), then deleted from
        the old one. Resumable: ids an interrupted run left in both spaces are first deleted
        from the old space. ``limit`` caps how many documents are re-embedded by this call.
        With ``refit`` the adapter is refitted on the backfilled pairs (:meth:`refit_adapter`)
        whenever they reach ``REFIT_GROWTH`` times the pairs it was fitted on, so the adapter
        path improves as the backfill proceeds. Returns how many documents left the old space.
        """
        if not isinstance(refit, bool):
            raise InvalidInputError(f"refit must be True or False, got {refit!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidInputError(f"batch_size must be a positive integer, got {batch_size!r}")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
            raise InvalidInputError(f"limit must be a non-negative integer or None, got {limit!r}")
        if limit is not None and limit < 0:
            raise InvalidInputError(f"limit must be a non-negative integer or None, got {limit!r}")
        col, child = self.old_space, self.new_space
        col.refresh()
        child.refresh()
        moved = self.settle()
        todo = np.sort(col.live_ids())
        missing = without_text(col, todo)
        if len(missing):
            raise InvalidInputError(
                f"{len(missing)} documents of the old space have no stored text, so they cannot "
                f"be re-embedded: ids {missing[:10].tolist()}{' ...' if len(missing) > 10 else ''}"
                f"; delete them (upgrade.delete) or re-add them with their texts"
            )
        if limit is not None:
            todo = todo[:limit]
        encoder = self.encoder
        with tqdm(total=len(todo), desc="backfill", unit="doc", disable=_quiet(progress)) as bar:
            for start in range(0, len(todo), batch_size):
                ids = todo[start : start + batch_size]
                texts = col.texts(ids)
                metadata = col.metadata(ids)
                vectors = encoder.encode(texts, kind="doc", progress=False)
                child.add(vectors, ids=ids, metadata=metadata, texts=texts)
                col.delete(ids)
                moved += len(ids)
                bar.update(len(ids))
                if refit and self._refit_due():
                    self.refit_adapter()
        return moved

    def _refit_due(self) -> bool:
        """Whether the backfilled pairs outnumber the adapter's pairs enough (a cheap count
        first: documents gone from the old space, which includes deleted ones)."""
        wanted = REFIT_GROWTH * int(self.record["sample"]["pairs"])
        gone = int(self.record["old_count_at_begin"]) - len(self.old_space)
        return gone >= wanted and len(self._backfilled_rows()) >= wanted

    def _backfilled_rows(self) -> np.ndarray:
        """Old-space rows still holding the old vectors of documents now in the new space."""
        stored = self.old_space.stored_ids()
        # last row holding each id in the old space (an id deleted and re-added has several)
        last = len(stored) - 1 - np.unique(stored[::-1], return_index=True)[1]
        return last[np.isin(stored[last], self.new_space.live_ids())]

    def settle(self) -> int:
        """Delete from the old space the ids an interrupted backfill already moved."""
        both = self._overlap()
        if len(both):
            self.old_space.delete(both)
        return len(both)

    def finish(self) -> Any:
        """Make the new space the collection; needs an empty old space. Returns the new space.

        One atomic replace of the parent's manifest records ``moved_to`` (so
        ``slimvec.open(parent)`` opens the new space) and drops the old segments, which are
        then removed with the upgrade's files.
        """
        col, child = self.old_space, self.new_space
        record, parent = self.record, col.path
        with col.transaction() as m:
            if len(col):
                raise InvalidInputError(
                    f"{len(col)} documents are still in the old space; run backfill() until "
                    f"it returns 0 (or delete them) before finishing the upgrade"
                )
            with child.transaction() as cm:  # ids stay unique: the child continues the parent's
                cm.next_id = max(cm.next_id, m.next_id)
                cm.extra["upgraded_from"] = {"old": record["old"], "report": record["report"]}
                cm.commit(child.path)
            generation = m.generation + 1
            meta_db = f"meta-{generation:06d}.sqlite"
            (col.path / meta_db).unlink(missing_ok=True)
            MetaStore(col.path / meta_db, create=True).close()
            del m.extra["upgrade"]
            m.extra.pop("bm25", None)
            m.extra["moved_to"] = record["space"]
            m.segments, m.rows, m.deleted, m.tombstones, m.log = [], 0, 0, None, None
            m.meta_db = meta_db
            m.commit(col.path)  # the commit point; the transaction then sweeps the old
            # segments, tombstones, texts and keyword index
        with col.transaction() as m:  # on the parent still: nothing here follows the move
            _remove_orphans(parent, m.extra)  # the upgrade's files
        return child

    # -- searching --------------------------------------------------------------------------
    @property
    def has_keyword_index(self) -> bool:
        return self.old_space.has_texts or self.new_space.has_texts

    def keyword_search(self, queries: list[str], k: int, filter: Any = None) -> SearchResult:  # noqa: A002
        """BM25 top-``k`` over both spaces, among the rows matching ``filter`` (an id moved to
        the new space by backfill but not yet deleted from the old one counts once, as the
        new space's)."""
        old, new = self.old_space, self.new_space
        found = [
            space.keyword_search(queries, k, None if filter is None else space.matching_ids(filter))
            for space in (old, new)
        ]
        (ids, scores), (new_ids, new_scores) = ((r.ids, r.scores) for r in found)
        moved = (ids[:, :, None] == new_ids[:, None, :]).any(axis=2) & (ids >= 0)
        scores = np.where(moved, -np.inf, scores)
        all_ids = np.concatenate([new_ids, ids], axis=1)
        cols, best = select_top(np.concatenate([new_scores, scores], axis=1), k)
        return SearchResult(*pad_results(np.take_along_axis(all_ids, cols, axis=1), best, k))

    def refit_adapter(
        self, kind: str | None = None, max_pairs: int = 20_000, seed: int = 0
    ) -> dict:
        """Refit both bridges (adapters and calibrations) on backfilled documents; commit them.

        Backfilled documents are paired for free: their new vector is in the new space and
        their old vector still sits in the old space's (tombstoned) rows until ``finish``.
        More pairs than the begin sample help the adapter path (measured on Debian, MiniLM to
        Gemma at 50% backfill: recall@10 0.75 -> 0.84-0.86). ``kind`` defaults to the one
        ``begin_upgrade`` was asked for. Returns the new quality report.
        """
        kind = kind or self.record.get("adapter_kind", "auto")
        col, child = self.old_space, self.new_space
        old_rows = self._backfilled_rows()
        stored = col.stored_ids()
        if len(old_rows) < 10:
            raise InvalidInputError(
                f"only {len(old_rows)} backfilled documents still have their old vectors; "
                f"backfill more before refitting"
            )
        if len(old_rows) > max_pairs:
            old_rows = np.random.default_rng(seed).choice(old_rows, max_pairs, replace=False)
        ids = stored[old_rows]
        new, old = stored_vectors(child, ids), col.gather(ORIGINAL, old_rows)
        bridges, reports = _fit_bridges(new, old, kind, seed)
        with col.transaction() as m:
            _remove_orphans(col.path, m.extra)  # of an earlier refit that crashed before its commit
            record = m.extra["upgrade"]
            previous = [name for way in DIRECTIONS for name in record["files"][way].values()]
            generation = m.generation + 1
            record["files"].update(_save_bridges(col, bridges, generation))
            record.update(report=reports["to_old"], reverse_report=reports["to_new"])
            record["sample"] = {"source": "backfilled", "pairs": len(ids), "query_probes": 0}
            m.commit(col.path)  # the commit point; old files are unused from here on
        for name in previous:
            (col.path / name).unlink(missing_ok=True)
        self.to_old, self.to_new = bridges["to_old"], bridges["to_new"]
        return self.report

    def search_texts(
        self, queries: Sequence[str] | str, k: int = 10, exact: bool = False, **options: Any
    ) -> SearchResult:
        """Top-``k`` over both spaces: the new space with the new model's query vectors, the
        old space with the old model's (``keep_old_encoder``) or through the adapter
        (``options``: ``filter``, ``nprobe``, as in ``search``)."""
        queries = as_texts(queries, "queries")
        k = check_k(k)
        new_q = self.encoder.encode(queries, kind="query")
        old_q = None
        if self.keep_old_encoder and len(self.old_space):
            old_q = self.old_space.encoder.encode(queries, kind="query")
        return self.search_vectors(new_q, k, old_queries=old_q, exact=exact, **options)

    def search_vectors(
        self,
        new_queries: Any = None,
        k: int = 10,
        old_queries: Any = None,
        exact: bool = False,
        filter: Any = None,  # noqa: A002
        nprobe: int | None = None,
    ) -> SearchResult:
        """Merged top-``k`` over both spaces for query vectors of either model or both (row i
        = the same query). Each space is searched with its own model's vectors when given, else
        through the bridge from the other model, scores calibrated onto that model's scale.
        ``filter`` and ``nprobe`` apply in both spaces; ``explain`` holds each space's."""
        if new_queries is None and old_queries is None:
            raise InvalidInputError("give new_queries, old_queries or both")
        k = check_k(k)
        col, child = self.old_space, self.new_space
        new_q = None if new_queries is None else child.prepare_queries(new_queries)
        old_q = None if old_queries is None else col.prepare_queries(old_queries)
        if new_q is not None and old_q is not None and len(new_q) != len(old_q):
            raise InvalidInputError(
                f"got {len(new_q)} new-model queries but {len(old_q)} old-model ones"
            )
        params = SearchParams(exact, filter, nprobe)
        both = self._overlap()
        blend = new_q is not None and old_q is not None and len(col) > 0
        if new_q is not None:
            new_res = child.search_rows(new_q, k * BLEND_DEPTH if blend else k, params)
            if blend:
                new_res = self._blend(new_res, old_q)
        else:
            new_res = self.to_new.search(child, old_q, k, params)
        if old_q is not None:
            old_res = col.search_rows(old_q, k + len(both), params)
            if new_q is not None:  # both models' own scores: put the old ones on the new scale
                old_res = _calibrated(old_res, self.dual_calibrator)
        else:
            old_res = self.to_old.search(col, new_q, k + len(both), params)
        shadowed = np.isin(old_res.ids, both) | (old_res.ids < 0)
        ids = np.concatenate([new_res.ids, np.where(shadowed, -1, old_res.ids)], axis=1)
        scores = np.concatenate([new_res.scores, np.where(shadowed, -np.inf, old_res.scores)], 1)
        cols, top = select_top(scores.astype(np.float32), k)
        found = np.take_along_axis(ids, cols, axis=1)
        explain = {"plan": "both spaces", "old": old_res.explain, "new": new_res.explain}
        if filter is not None:
            explain["matching"] = sum(r.explain["matching"] for r in (old_res, new_res))
        return SearchResult(np.where(np.isfinite(top), found, -1), top, explain)

    def _blend(self, res: Any, old_q: np.ndarray) -> Any:
        """``res`` (new-space results) with backfilled documents' scores blended with their
        old-model scores (calibrated onto the new scale), re-sorted (``BLEND_OLD_WEIGHT``)."""
        paired_ids, paired_rows = self._paired()
        if not len(paired_ids):
            return res
        pos = np.minimum(np.searchsorted(paired_ids, res.ids), len(paired_ids) - 1)
        has = (res.ids >= 0) & (paired_ids[pos] == res.ids)
        queries, cols = np.nonzero(has)
        old = np.empty(len(queries), np.float32)
        for start in range(0, len(queries), BLEND_BLOCK):
            part = slice(start, start + BLEND_BLOCK)
            rows = paired_rows[pos[queries[part], cols[part]]]
            vectors = self.old_space.gather(ORIGINAL, rows)
            old[part] = np.einsum("nd,nd->n", old_q[queries[part]], vectors)
        scores = res.scores.copy()
        new = scores[queries, cols]
        scores[queries, cols] = new + BLEND_OLD_WEIGHT * (self.dual_calibrator.transform(old) - new)
        order = np.argsort(-scores, axis=1, kind="stable")
        return type(res)(
            np.take_along_axis(res.ids, order, 1), np.take_along_axis(scores, order, 1), res.explain
        )

    def _paired(self) -> tuple[np.ndarray, np.ndarray]:
        """Sorted ids of backfilled documents and the old-space rows of their old vectors,
        cached per commit."""
        key = (self.old_space.version, self.new_space.version)
        if self._paired_cache is None or self._paired_cache[0] != key:
            rows = self._backfilled_rows()
            ids = self.old_space.stored_ids()[rows]
            order = np.argsort(ids)
            self._paired_cache = (key, ids[order], rows[order])
        return self._paired_cache[1], self._paired_cache[2]

    def _overlap(self) -> np.ndarray:
        """Ids live in both spaces (only after an interrupted backfill), cached per commit."""
        key = (self.old_space.version, self.new_space.version)
        if self._overlap_cache is None or self._overlap_cache[0] != key:
            both = np.intersect1d(self.old_space.live_ids(), self.new_space.live_ids())
            self._overlap_cache = (key, both)
        return self._overlap_cache[1]


def _quiet(progress: bool | None) -> bool | None:
    """tqdm's ``disable``: None hides the bar when not on a terminal."""
    return None if progress is None else not progress


def _rows(found: GetResult, order: np.ndarray) -> GetResult:
    """``found`` reduced to (and reordered by) the positions ``order``."""
    pick = order.tolist()
    return GetResult(
        found.ids[order],
        [found.metadata[i] for i in pick],
        [found.texts[i] for i in pick],
        None if found.vectors is None else found.vectors[order],
    )
