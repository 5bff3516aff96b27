"""Parallel, resumable text ingest: a Ray Dataset of texts → embeddings → shards.

Ray Data streams the texts through a pool of encoder actors (``map_batches`` with an
``ActorPoolStrategy``: each actor loads the model once), and the driver routes each embedded
batch to the shards. Every text has a stable id (its ``id_column``, or a hash of the text), so
a rerun after an interruption first drops the texts whose ids are already stored, before they
are embedded: the expensive step is never repeated, and nothing is stored twice. A shard that
dies mid-batch is waited for (Ray restarts it) and the batch retried, skipping what it had
committed.
"""

from __future__ import annotations

import hashlib
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from slimvec.distributed.collection import ShardedCollection
from slimvec.errors import InvalidInputError, ShardUnavailableError


@dataclass
class IngestReport:
    """What one ``ingest_texts`` run did: texts stored, texts skipped as already present,
    and batches retried after a shard failure."""

    added: int
    skipped: int
    retries: int


def text_ids(texts: list[str]) -> np.ndarray:
    """Stable non-negative 53-bit ids (slimvec's id range) from the texts themselves (blake2b),
    for datasets that carry no id column: the same text gets the same id on every run (and is
    stored once)."""
    digests = b"".join(hashlib.blake2b(t.encode("utf-8"), digest_size=8).digest() for t in texts)
    return (np.frombuffer(digests, dtype="<u8") >> np.uint64(11)).astype(np.int64)


def text_keys(texts: list[str]) -> np.ndarray:
    """Stable string ids for a string-id collection (``ids="str"``): the blake2b-128 hex
    digest of each text (object array), the string counterpart of :func:`text_ids`."""
    keys = np.empty(len(texts), dtype=object)
    keys[:] = [hashlib.blake2b(t.encode("utf-8"), digest_size=16).hexdigest() for t in texts]
    return keys


def _unseen(
    batch: dict[str, np.ndarray],
    existing: np.ndarray,
    text_column: str,
    id_column: str | None,
    id_kind: str = "int",
) -> dict[str, np.ndarray]:
    """Give each row its id and drop rows already stored (before anything is embedded)."""
    texts = [str(t) for t in batch[text_column]]
    if id_kind == "str":
        if id_column is None:
            ids = text_keys(texts)
        else:
            ids = np.empty(len(texts), dtype=object)
            ids[:] = [str(v) for v in batch[id_column]]
    elif id_column is None:
        ids = text_ids(texts)
    else:
        ids = np.asarray(batch[id_column]).astype(np.int64)
    keep = ~np.isin(ids, existing)
    return {"id": ids[keep], "text": np.array(texts, dtype=object)[keep]}


class _Embed:
    """An encoder actor of the pool: loads the model once, embeds batches of texts."""

    def __init__(self, encoder: Any):
        from slimvec.encoders import get_encoder

        self.encoder = get_encoder(encoder)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        texts = [str(t) for t in batch["text"]]
        vectors = self.encoder.encode(texts, kind="doc", progress=False)
        return {"id": batch["id"], "text": batch["text"], "vector": vectors}


def ingest_texts(
    dataset: Any,
    col: ShardedCollection,
    encoder: Any = None,
    batch_size: int = 256,
    *,
    text_column: str = "text",
    id_column: str | None = None,
    encoders: int = 1,
    progress: bool = True,
    shard_wait: float = 60.0,
) -> IngestReport:
    """Embed the ``text_column`` of a Ray Dataset with ``encoders`` encoder actors and add it
    to ``col`` with its texts; returns an :class:`IngestReport`.

    ``encoder`` defaults to the collection's own (and must be the same model); ids come from
    ``id_column`` or are hashes of the texts (:func:`text_ids`; in a string-id collection
    ``id_column`` values as strings, or :func:`text_keys`). Rerunning after an interruption
    stores only what is missing. A shard that stays down longer than ``shard_wait`` seconds
    ends the run with ``ShardUnavailableError`` (rerun it later: it resumes).

    Each encoder actor takes one CPU and the dataset's read tasks need one more, so the pool is
    sized to the cluster: ``encoders`` beyond its CPUs (less those the shard actors reserve,
    less one for reading) are dropped with a warning, and a cluster without room for one
    encoder and a reader is refused at once (Ray would otherwise wait forever for CPUs that
    never free up).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInputError(f"batch_size must be a positive integer, got {batch_size!r}")
    if isinstance(encoders, bool) or not isinstance(encoders, int) or encoders < 1:
        raise InvalidInputError(f"encoders must be a positive integer, got {encoders!r}")
    columns = dataset.columns()
    for name in (text_column, id_column):
        if name is not None and name not in columns:
            raise InvalidInputError(
                f"the dataset has no column {name!r} (it has {columns}); pass text_column= / "
                f"id_column= to name yours"
            )
    import ray.data  # ~3 s to import: not in every shard actor that imports this package

    encoders = pool_size(encoders, col)
    model = col.encoder if encoder is None else col.attach_encoder(encoder)
    existing = col.live_ids()
    rows = dataset.map_batches(
        _unseen,
        fn_kwargs={
            "existing": existing,
            "text_column": text_column,
            "id_column": id_column,
            "id_kind": col.id_kind,
        },
        batch_format="numpy",
        batch_size=batch_size,
    ).map_batches(
        _Embed,
        fn_constructor_args=(model,),
        batch_format="numpy",
        batch_size=batch_size,
        num_cpus=ENCODER_CPUS,
        compute=ray.data.ActorPoolStrategy(size=encoders),
    )
    total = dataset.count()
    retries = 0
    with tqdm(total=total - len(existing), desc="ingest", unit="text", disable=not progress) as bar:
        for batch in rows.iter_batches(batch_size=batch_size, batch_format="numpy"):
            retries += _add_with_retries(col, batch, shard_wait)
            bar.update(len(batch["id"]))
    added = len(col) - len(existing)
    return IngestReport(added=added, skipped=total - added, retries=retries)


#: CPUs each encoder actor reserves, and CPUs left for the dataset's read and map tasks: with
#: every CPU held by an encoder actor, read tasks blocked on their full output never finish
#: and the actors still starting never get a CPU (measured: ``read_text`` with
#: ``ray.init(num_cpus=2)`` hangs at 2 and 4 encoders, runs at 1).
ENCODER_CPUS = 1
READER_CPUS = 1


def pool_size(encoders: int, col: ShardedCollection) -> int:
    """How many encoder actors the cluster can run beside a reader: ``encoders``, or fewer
    with a warning; an ``InvalidInputError`` naming the CPUs needed when not even one fits."""
    import ray

    total = float(ray.cluster_resources().get("CPU", 0))
    held = col.reserved_cpus()
    fit = int((total - held - READER_CPUS) // ENCODER_CPUS)
    held_text = f", {held:g} of them reserved by the shard actors" if held else ""
    if fit < 1:
        raise InvalidInputError(
            f"ingest_texts needs {ENCODER_CPUS + READER_CPUS:g} free CPUs ({ENCODER_CPUS:g} per "
            f"encoder actor, {READER_CPUS:g} to read the dataset); the Ray cluster has "
            f"{total:g}{held_text}. Start Ray with more (ray.init(num_cpus=...)), add nodes, "
            f"or lower the shards' actor_options num_cpus"
        )
    if encoders > fit:
        warnings.warn(
            f"ingest_texts: encoders={encoders} needs {encoders * ENCODER_CPUS + READER_CPUS:g} "
            f"CPUs ({ENCODER_CPUS:g} per encoder actor, {READER_CPUS:g} to read the dataset) but "
            f"the Ray cluster has {total:g}{held_text}; using {fit} encoder actor"
            f"{'s' if fit > 1 else ''}. For more, start Ray with more CPUs or add nodes",
            UserWarning,
            stacklevel=3,
        )
        return fit
    return encoders


def _add_with_retries(col: ShardedCollection, batch: dict[str, Any], wait: float) -> int:
    """Add one embedded batch; on a shard failure wait for Ray to restart the shard and add
    what is still missing (what it had committed is skipped). Returns the retries."""
    _, first = np.unique(batch["id"], return_index=True)  # a text repeated in the batch
    first = np.sort(first)
    ids, vectors = batch["id"][first], batch["vector"][first]
    texts = [str(batch["text"][i]) for i in first]
    retries = 0
    deadline = None
    while True:
        try:
            col._add(vectors, ids, None, texts, skip_existing=True)
            return retries
        except ShardUnavailableError:
            deadline = deadline or time.monotonic() + wait
            if time.monotonic() > deadline:
                raise
            retries += 1
            time.sleep(0.2)
