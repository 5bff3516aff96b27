"""A new collection: what its manifest records (checked before anything is written), and its
directory laid out with an empty metadata database, an empty log and that manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from slimvec.errors import CollectionExistsError
from slimvec.sparse.bm25 import BM25Index
from slimvec.spec import parse_spec
from slimvec.store.idmap import check_id_kind
from slimvec.store.log import create_log
from slimvec.store.manifest import MANIFEST, Manifest
from slimvec.store.meta import MetaStore
from slimvec.validation import check_dim, check_metric, check_options


def new_manifest(
    dim: Any, metric: str, spec: str, model: Any, extra: Any, keyword: Any, ids: str
) -> Manifest:
    """What a new collection records: dim, metric and spec (checked), its model, the
    keyword index's options, its kind of ids."""
    manifest = Manifest(dim=check_dim(dim), metric=check_metric(metric), spec=str(parse_spec(spec)))
    manifest.extra.update(extra or {})
    if check_id_kind(ids) == "str":
        manifest.extra["id_kind"] = "str"
    if keyword:
        BM25Index(**check_options(keyword, BM25Index, "keyword"))  # validates them
        manifest.extra["keyword_options"] = dict(keyword)
    if model is not None:
        from slimvec.encoders import encoder_spec

        manifest.extra["encoder"] = encoder_spec(model)
    return manifest


def create_directory(directory: Path, manifest: Manifest) -> None:
    """A new collection directory: an empty metadata database and log, then the manifest."""
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        what = "a collection" if (directory / MANIFEST).exists() else "other files"
        raise CollectionExistsError(
            f"{str(directory)!r} already holds {what}; open it with slimvec.open, or pick "
            f"a new path"
        )
    directory.mkdir(parents=True, exist_ok=True)
    MetaStore(directory / manifest.meta_db, create=True).close()
    manifest.log = "log-000000.wal"
    create_log(directory / manifest.log)
    manifest.save(directory)
