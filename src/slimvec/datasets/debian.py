"""Debian package descriptions as a retrieval set: query = a package's one-line synopsis,
relevant document = its long description (~60k distinct documents, all real text).

The source is Debian's ``Translation-en`` index, fetched by apt into a private lists directory
under the slimvec cache (the system's apt state is untouched) and parsed once. Parsing,
de-duplication and sampling follow ``shared/data/debian-gemma/build.py`` exactly, so
``load_debian(size=6000, queries=1000)`` on the bookworm 12.15 index gives that set's texts.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import os
import random
import re
import shutil
import subprocess
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from slimvec.datasets.base import Dataset
from slimvec.datasets.cache import (
    cache_root,
    cached_embeddings,
    read_json,
    slug,
    write_json,
)
from slimvec.encoders.base import Encoder
from slimvec.errors import DatasetUnavailableError
from slimvec.validation import check_int

SEED = 20250101  # the seed of the shared debian-gemma set
MIN_DOC_WORDS = 8  # near-empty long descriptions are not documents
MAX_REL_PER_SYNOPSIS = 3  # synopses carried by more descriptions are too generic to be queries
APT_HELPER = "/usr/lib/apt/apt-helper"
SYSTEM_LISTS = Path("/var/lib/apt/lists")
_TRANSLATION_GLOB = "*_i18n_Translation-en*"
_PACKAGE = re.compile(r"^Package: (\S+)$", re.M)
_DESCRIPTION = re.compile(r"^Description-en: (.*)\n?((?:[ \t].*\n?)*)", re.M)


@dataclass(frozen=True)
class DebianCorpus:
    """Every distinct long description, in id order, and which ones carry each synopsis.

    ``doc_ids[i]`` is the first package (sorted) with description ``doc_texts[i]``; a package
    listed with several descriptions gets ``pkg~2``, ``pkg~3`` for the later ones.
    """

    doc_ids: list[str]
    doc_texts: list[str]
    synopses: dict[str, list[int]]  # synopsis -> indices into doc_ids, ascending
    source: str = ""  # file the index was read from
    sha256: str = ""  # of that file, to tell index versions apart

    def __len__(self) -> int:
        return len(self.doc_ids)

    def to_json(self) -> dict:
        return {
            "source": self.source,
            "sha256": self.sha256,
            "docs": [self.doc_ids, self.doc_texts],
            "synopses": self.synopses,
        }

    @classmethod
    def from_json(cls, data: dict) -> DebianCorpus:
        ids, texts = data["docs"]
        return cls(ids, texts, data["synopses"], data["source"], data["sha256"])


def parse_long_description(lines: list[str]) -> str:
    """Debian long description -> text: ``.`` lines end paragraphs (kept as newlines), the
    lines of a paragraph are joined with spaces."""
    paragraphs, current = [], []
    for line in lines:
        line = line.strip()
        if line == ".":
            if current:
                paragraphs.append(" ".join(current))
                current = []
        elif line:
            current.append(line)
    if current:
        paragraphs.append(" ".join(current))
    return "\n".join(paragraphs)


def parse_translation(text: str, source: str = "", sha256: str = "") -> DebianCorpus:
    """Parse a ``Translation-en`` index (``Package:`` / ``Description-en:`` records)."""
    packages_of: dict[str, set[str]] = defaultdict(set)
    docs_of: dict[str, set[str]] = defaultdict(set)
    for record in text.split("\n\n"):
        package = _PACKAGE.search(record)
        description = _DESCRIPTION.search(record)
        if not (package and description):
            continue
        synopsis = " ".join(description.group(1).split())
        long = parse_long_description(description.group(2).splitlines())
        if not synopsis or len(long.split()) < MIN_DOC_WORDS:
            continue
        packages_of[long].add(package.group(1))
        docs_of[synopsis].add(long)
    first = {long: min(pkgs) for long, pkgs in packages_of.items()}
    texts = sorted(first, key=lambda t: (first[t], t))
    ids, seen = [], defaultdict(int)
    for t in texts:
        seen[first[t]] += 1
        n = seen[first[t]]
        ids.append(first[t] if n == 1 else f"{first[t]}~{n}")
    row = {t: i for i, t in enumerate(texts)}
    synopses = {s: sorted(row[t] for t in longs) for s, longs in sorted(docs_of.items())}
    return DebianCorpus(ids, texts, synopses, source, sha256)


def sample(corpus: DebianCorpus, size: int | None, queries: int, seed: int) -> Dataset:
    """A seeded subset: ``size`` random documents, and up to ``queries`` synopses that have a
    relevant document in it and are carried by at most 3 descriptions overall; a query's
    relevant documents are all sampled documents carrying its synopsis."""
    n = len(corpus)
    if size is None:
        size = n
    size = check_int(size, "size", high=n)
    queries = check_int(queries, "queries", low=0)
    rng = random.Random(seed)
    order = list(range(n))
    rng.shuffle(order)
    chosen = order[:size]
    in_sample = np.zeros(n, dtype=bool)
    in_sample[chosen] = True
    candidates = [
        s
        for s, rows in corpus.synopses.items()  # sorted by synopsis
        if len(rows) <= MAX_REL_PER_SYNOPSIS and in_sample[rows].any()
    ]
    rng.shuffle(candidates)
    picked = candidates[:queries]
    query_ids = [f"q{i:04d}" for i in range(len(picked))]
    qrels = {
        qid: {d: 1 for d in sorted(corpus.doc_ids[r] for r in corpus.synopses[s] if in_sample[r])}
        for qid, s in zip(query_ids, picked)
    }
    return Dataset(
        name=f"debian-{size}-seed{seed}",
        doc_ids=[corpus.doc_ids[i] for i in chosen],
        query_ids=query_ids,
        doc_texts=[corpus.doc_texts[i] for i in chosen],
        query_texts=picked,
        qrels=qrels,
    )


# -- getting the index ---------------------------------------------------------------------


def debian_dir() -> Path:
    return cache_root() / "debian"


def apt_update_command(lists_dir: Path) -> list[str]:
    """The apt-get call that fetches the package indexes into ``lists_dir`` only.

    Package lists are skipped (only descriptions are needed) and apt's binary caches are
    disabled, so nothing outside ``lists_dir`` is written.
    """
    return [
        "apt-get",
        "-o", f"Dir::State::Lists={lists_dir}",
        "-o", "Acquire::Languages=en",
        "-o", "Acquire::IndexTargets::deb::Packages::DefaultEnabled=false",
        "-o", "Dir::Cache::pkgcache=",
        "-o", "Dir::Cache::srcpkgcache=",
        "update",
    ]  # fmt: skip


def _fix_command(lists_dir: Path) -> str:
    return (
        f"mkdir -p {lists_dir}/partial && sudo apt-get -o Dir::State::Lists={lists_dir} "
        f"-o Acquire::Languages=en update"
    )


def find_translation(lists_dir: Path) -> Path | None:
    """The largest ``Translation-en`` index in an apt lists directory (the release's ``main``;
    ``-updates`` and ``-security`` carry only a few hundred packages)."""
    if not lists_dir.is_dir():
        return None
    files = [p for p in lists_dir.glob(_TRANSLATION_GLOB) if p.is_file()]
    return max(files, key=lambda p: (p.stat().st_size, p.name)) if files else None


def fetch_lists(lists_dir: Path) -> Path:
    """Run apt-get update into ``lists_dir`` and return its ``Translation-en`` file."""
    if shutil.which("apt-get") is None:
        raise DatasetUnavailableError(
            "the Debian dataset needs Debian's apt (apt-get was not found). On another machine "
            f"run `{_fix_command(Path('DIR'))}`, copy DIR/*_i18n_Translation-en* into "
            f"{lists_dir}/, and call again; or load your own data with load_files()"
        )
    if os.geteuid() != 0:
        raise DatasetUnavailableError(
            f"fetching the Debian package index needs root (apt-get update). Run once:\n"
            f"  {_fix_command(lists_dir)}\nthen call again (the index is cached in {lists_dir})"
        )
    (lists_dir / "partial").mkdir(parents=True, exist_ok=True)
    command = apt_update_command(lists_dir)
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    found = find_translation(lists_dir)
    if result.returncode != 0 or found is None:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-5:])
        raise DatasetUnavailableError(
            f"`{' '.join(command)}` did not produce a Translation-en index "
            f"(exit code {result.returncode}):\n{tail}\nCheck that a Debian mirror is reachable "
            f"and /etc/apt/sources.list(.d) lists one"
        )
    return found


def read_index(path: Path) -> str:
    """Text of a (possibly compressed) Translation-en file; apt-helper handles every format
    apt downloads (lz4, xz, gz, ...), Python's own decompressors are the fallback."""
    if Path(APT_HELPER).exists():
        result = subprocess.run([APT_HELPER, "cat-file", str(path)], capture_output=True)
        if result.returncode == 0:
            return result.stdout.decode("utf-8")
    openers = {".gz": gzip.open, ".xz": lzma.open, ".lzma": lzma.open, ".bz2": bz2.open}
    if path.suffix in openers:
        with openers[path.suffix](path, "rb") as f:
            return f.read().decode("utf-8")
    if path.suffix == ".lz4":
        raise DatasetUnavailableError(
            f"{path} is lz4-compressed and {APT_HELPER} (from apt) is not available to read it; "
            f"decompress it with `lz4 -d` into {path.with_suffix('')} and call again"
        )
    return path.read_text(encoding="utf-8")


def debian_corpus(refresh: bool = False, lists_dir: str | Path | None = None) -> DebianCorpus:
    """The parsed Debian corpus, from the cache when there (``refresh=True`` re-fetches).

    ``lists_dir`` reads an existing apt lists directory instead of fetching (read-only); by
    default the index is fetched into the cache, falling back to the system's apt lists when
    apt cannot be run here.
    """
    corpus_path = debian_dir() / "corpus.json"
    if lists_dir is None and not refresh:
        cached = read_json(corpus_path)
        if cached is not None:
            return DebianCorpus.from_json(cached)
    if lists_dir is not None:
        index = find_translation(Path(lists_dir))
        if index is None:
            raise DatasetUnavailableError(
                f"no *_i18n_Translation-en* file in {lists_dir}; fetch one with:\n"
                f"  {_fix_command(Path(lists_dir))}"
            )
    else:
        own = debian_dir() / "lists"
        index = None if refresh else find_translation(own)
        if index is None:
            try:
                index = fetch_lists(own)
            except DatasetUnavailableError:
                index = find_translation(SYSTEM_LISTS)
                if index is None:
                    raise
    data = index.read_bytes()
    corpus = parse_translation(
        read_index(index), source=index.name, sha256=hashlib.sha256(data).hexdigest()
    )
    if not len(corpus):
        raise DatasetUnavailableError(
            f"{index} holds no package descriptions; delete it and call again with refresh=True"
        )
    if lists_dir is None:
        write_json(corpus_path, corpus.to_json())
    return corpus


def load_debian(
    size: int | None = 3000,
    queries: int = 1000,
    seed: int = SEED,
    model: str | Path | Encoder | None = None,
    *,
    refresh: bool = False,
    lists_dir: str | Path | None = None,
    batch_size: int | None = None,
    progress: bool | None = None,
) -> Dataset:
    """Debian package search: ``size`` documents (None = all ~60k) and up to ``queries``
    synopsis queries, sampled with ``seed``.

    With ``model`` (a name, a path or an ``Encoder``) documents and queries are embedded, once:
    the vectors are cached per corpus version, subset and model.
    """
    corpus = debian_corpus(refresh=refresh, lists_dir=lists_dir)
    dataset = sample(corpus, size, queries, seed)
    if model is None:
        return dataset
    from slimvec.encoders import get_encoder

    encoder = get_encoder(model)
    subset = f"{corpus.sha256[:12]}-{len(dataset.doc_ids)}-{len(dataset.query_ids)}-{seed}"
    directory = debian_dir() / "embeddings" / subset / slug(encoder.name)
    dataset.docs, dataset.queries = cached_embeddings(
        encoder,
        directory,
        dataset.doc_texts or [],
        dataset.query_texts or [],
        batch_size=batch_size,
        progress=progress,
    )
    dataset.model = encoder.name
    return dataset


def cached_models() -> list[str]:
    """Names of the models with cached Debian embeddings (any subset)."""
    root = debian_dir() / "embeddings"
    names = {
        meta["model"]
        for path in root.glob("*/*/meta.json")
        if (meta := read_json(path)) and "model" in meta
    }
    return sorted(names)
