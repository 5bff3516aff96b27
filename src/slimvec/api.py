"""``slimvec.create`` and ``slimvec.open``: pick the collection class a directory needs.

They live above ``collection`` and ``multivector`` so that neither imports the other's
module for dispatch (``MultiVectorCollection`` is a ``Collection``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from slimvec.collection import Collection
from slimvec.compat.upgrading import UpgradingCollection
from slimvec.engine.quality import check_target
from slimvec.errors import InvalidInputError
from slimvec.multivector.collection import MultiVectorCollection
from slimvec.spec import DEFAULT_SPEC
from slimvec.store.idmap import check_id_kind
from slimvec.store.manifest import Manifest
from slimvec.validation import as_path


def create(
    path: str | Path,
    dim: int | None = None,
    metric: str = "cosine",
    spec: str = DEFAULT_SPEC,
    encoder: Any = None,
    multivector: bool = False,
    keyword: dict[str, Any] | None = None,
    layers: int | None = None,
    dims: int | None = None,
    ids: str = "int",
    target_recall: float | None = None,
    **multivector_options: Any,
) -> Collection:
    """Create an empty collection directory for ``dim``-dim vectors and open it.

    ``metric``: "cosine" (vectors normalised on the way in) or "ip". ``spec``: the pipeline,
    see :mod:`slimvec.spec`; the default is a binary first pass with float32 rescoring.
    ``encoder``: a model name/path or ``slimvec.encoders.Encoder`` for ``add_texts`` /
    ``search_texts`` (needs ``slimvec[text]``); its name, dim and fingerprint are recorded.
    ``multivector=True`` makes a collection of token sets (ColBERT-style) searched through
    MUVERA encodings and exact MaxSim; see :class:`slimvec.multivector.MultiVectorCollection`
    for its options (``fde``, ``pool_factor``, ``token_code``) and default spec.
    ``keyword``: options of the BM25 index kept over stored texts (see
    :class:`slimvec.sparse.BM25Index`: ``k1``, ``b``, ``stopwords``, ``stemmer``, ...).
    ``layers`` / ``dims``: run only the encoder's first L layers and keep its first D dims (an
    elastic, 2D Matryoshka operating point; recorded in the model identity).
    ``ids``: "int" (int64 ids, the default) or "str" (string ids such as UUIDs or paths,
    taken and returned everywhere ids are; see :mod:`slimvec.store.idmap`).
    ``target_recall``: the recall@k the collection holds by turning its speed knobs, measured
    on live queries (see :mod:`slimvec.engine.quality`; ``set_target_recall`` changes it).
    """
    target_recall = check_target(target_recall)  # refused before anything is written
    if layers is not None or dims is not None:  # an elastic encoder's operating point
        from slimvec.encoders import get_encoder

        encoder = get_encoder(encoder, layers=layers, dims=dims)
    if multivector:
        if check_id_kind(ids) != "int":
            raise InvalidInputError(
                "string ids are not supported by multi-vector collections yet: create it with "
                "int ids (the default) and keep each key in its metadata, e.g. "
                "metadata=[{'key': 'doc-1'}], found again with filter={'key': 'doc-1'}"
            )
        if spec == DEFAULT_SPEC:
            spec = MultiVectorCollection.default_spec
        col = MultiVectorCollection.create_multivector(
            path, dim, metric, spec, encoder, keyword=keyword, **multivector_options
        )
    elif multivector_options:
        raise InvalidInputError(
            f"options {sorted(multivector_options)} apply to multi-vector collections only; "
            f"pass multivector=True"
        )
    else:
        col = Collection.create(path, dim, metric, spec, encoder, keyword=keyword, ids=ids)
    if target_recall is not None:
        col.set_target_recall(target_recall)
    return col


def open(path: str | Path, encoder: Any = None) -> Collection | UpgradingCollection:  # noqa: A001
    """Open an existing collection; raises ``CollectionNotFoundError`` if there is none.

    ``encoder`` may be given to supply a custom ``Encoder`` object; it must be the same model.
    While a model upgrade is in progress this is an ``UpgradingCollection`` (both spaces).
    """
    manifest = Manifest.load(as_path(path))
    if manifest.extra.get("moved_to"):  # a finished model upgrade: the data lives there now
        return open(Path(path) / manifest.extra["moved_to"], encoder=encoder)
    if "multivector" in manifest.extra:
        return MultiVectorCollection(path, encoder=encoder)
    if "upgrade" in manifest.extra:
        return UpgradingCollection.open(Collection(path, encoder=encoder, in_upgrade=True))
    return Collection(path, encoder=encoder)
