"""The encoder contract: texts in, unit-norm float32 rows out, the same way on every run.

A subclass implements ``_encode`` (and optionally ``_encode_tokens``) for one batch of texts;
the base class adds input checks, length-sorted batching, the progress bar, normalisation and
the fingerprint, so every backend behaves alike behind a collection or a benchmark.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
from tqdm.auto import tqdm

from slimvec.errors import InvalidInputError, SlimvecError
from slimvec.validation import check_int

Kind = Literal["doc", "query"]
KINDS: tuple[str, ...] = ("doc", "query")
PLURAL = {"doc": "docs", "query": "queries"}  # for progress bars

#: Encodes of at least this many texts show a progress bar unless ``progress`` says otherwise.
PROGRESS_MIN_TEXTS = 256

#: Fixed, varied texts whose embeddings identify a model (see ``Encoder.fingerprint``).
PROBE_TEXTS: tuple[str, ...] = (
    "The quick brown fox jumps over the lazy dog.",
    "Perl module to extract data from an HTML table",
    "How do I reset my password?",
    "Photosynthesis converts light energy into chemical energy in plants.",
    "library for lossless data compression",
)


def check_texts(texts: Any, what: str = "texts") -> list[str]:
    """``texts`` as a list of str; one str counts as one text."""
    if isinstance(texts, str):
        return [texts]
    if isinstance(texts, np.ndarray):
        texts = texts.tolist()
    if not isinstance(texts, Sequence):
        raise InvalidInputError(f"{what} must be a list of strings, got {type(texts).__name__}")
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise InvalidInputError(
            f"{what} must all be strings; items {bad[:10]} are "
            f"{type(texts[bad[0]]).__name__}; convert them with str() or drop them"
        )
    return list(texts)


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise InvalidInputError(
            f"kind must be 'doc' (texts to store) or 'query' (texts to search with), got {kind!r}"
        )
    return kind


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.where(norms > 0, norms, 1)).astype(np.float32, copy=False)


class Encoder:
    """Turns texts into vectors. Subclasses set ``name`` and ``dim`` and implement ``_encode``.

    ``kind="query"`` and ``kind="doc"`` may differ (asymmetric models use prompts), so always
    encode stored texts as docs and search texts as queries.
    """

    name: str
    dim: int
    default_batch_size: ClassVar[int] = 32

    # -- to implement ---------------------------------------------------------------------
    def _encode(self, texts: list[str], kind: str, batch_size: int) -> np.ndarray:
        """One chunk of texts -> (len(texts), dim) array, not necessarily normalised."""
        raise NotImplementedError

    def _encode_tokens(self, texts: list[str], kind: str, batch_size: int) -> list[np.ndarray]:
        """One chunk of texts -> one (n_tokens, dim) array per text, padding removed."""
        raise NotImplementedError(
            f"{type(self).__name__} gives one vector per text only; use a "
            f"SentenceTransformerEncoder for per-token vectors"
        )

    # -- public API -----------------------------------------------------------------------
    def encode(
        self,
        texts: Sequence[str] | str,
        kind: Kind = "doc",
        *,
        batch_size: int | None = None,
        progress: bool | None = None,
        normalize: bool = True,
    ) -> np.ndarray:
        """Embed ``texts`` as a float32 (n, dim) array, rows L2-normalised unless told not to.

        Texts are processed longest first so each batch pads little; ``progress=None`` shows a
        bar for long inputs only.
        """
        texts = check_texts(texts)
        kind = check_kind(kind)
        batch_size = self._check_batch_size(batch_size)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for idx, chunk in self._chunks(texts, kind, batch_size, progress):
            vecs = np.asarray(self._encode(chunk, kind, batch_size), dtype=np.float32)
            if vecs.shape != (len(chunk), self.dim):
                raise SlimvecError(
                    f"encoder {self.name!r} returned shape {vecs.shape} for {len(chunk)} texts; "
                    f"expected ({len(chunk)}, {self.dim})"
                )
            out[idx] = vecs
        return _unit_rows(out) if normalize else out

    def encode_tokens(
        self,
        texts: Sequence[str] | str,
        kind: Kind = "doc",
        *,
        batch_size: int | None = None,
        progress: bool | None = None,
        normalize: bool = True,
    ) -> list[np.ndarray]:
        """Per-token vectors for multi-vector (late interaction) search: one float32
        (n_tokens_i, dim) array per text, padding dropped, each token unit-norm by default."""
        texts = check_texts(texts)
        kind = check_kind(kind)
        batch_size = self._check_batch_size(batch_size)
        out: list[np.ndarray | None] = [None] * len(texts)
        for idx, chunk in self._chunks(texts, kind, batch_size, progress):
            for i, tokens in zip(idx, self._encode_tokens(chunk, kind, batch_size), strict=True):
                tokens = np.asarray(tokens, dtype=np.float32)
                out[i] = _unit_rows(tokens) if normalize else tokens
        return out  # type: ignore[return-value]

    def fingerprint(self) -> str:
        """A short hash identifying the model's behaviour, stable across runs on CPU.

        It hashes the pairwise cosines of fixed probe texts (rounded to 3 decimals) and a few
        leading coordinates (2 decimals): few, coarsely rounded numbers so float noise does not
        change it, while a different model behind the same name almost surely does. A value
        right at a rounding edge can still flip on another CPU, so the unrounded numbers are
        recorded too (:meth:`probe_values`, :func:`model_mismatch`).
        """
        cached = getattr(self, "_fingerprint", None)
        if cached is None:
            cos, coords = self._probe()
            values = np.concatenate([np.round(cos, 3), np.round(coords, 2)]) + 0.0
            text = f"{self.dim}|" + ",".join(f"{v:.3f}" for v in values)
            cached = hashlib.sha256(text.encode()).hexdigest()[:16]
            self._fingerprint = cached
        return cached

    def probe_values(self) -> list[float]:
        """The numbers the fingerprint hashes, to 4 decimals (cosines, then coordinates)."""
        cos, coords = self._probe()
        return [round(float(v), 4) for v in np.concatenate([cos, coords])]

    def _probe(self) -> tuple[np.ndarray, np.ndarray]:
        cached = getattr(self, "_probe_cache", None)
        if cached is None:
            emb = self.encode(list(PROBE_TEXTS), kind="doc", progress=False).astype(np.float64)
            cached = ((emb @ emb.T)[np.triu_indices(len(emb), 1)], emb[:2, :4].ravel())
            self._probe_cache = cached
        return cached

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim})"

    # -- helpers --------------------------------------------------------------------------
    def _check_batch_size(self, batch_size: int | None) -> int:
        if batch_size is None:
            return self.default_batch_size
        return check_int(batch_size, "batch_size")

    def _chunks(self, texts: list[str], kind: str, batch_size: int, progress: bool | None):
        """Yield (row indices, texts) in longest-first chunks of a few batches, with a bar."""
        if progress is None:
            progress = len(texts) >= PROGRESS_MIN_TEXTS
        order = np.argsort(
            -np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)), kind="stable"
        )
        step = batch_size * 8
        with tqdm(
            total=len(texts), desc=f"{self.name} {PLURAL[kind]}", unit="text", disable=not progress
        ) as bar:
            for start in range(0, len(texts), step):
                idx = order[start : start + step]
                yield idx, [texts[i] for i in idx]
                bar.update(len(idx))


def encoder_spec(encoder: Encoder) -> dict[str, Any]:
    """What a manifest records to recognise the model again: name, dim, fingerprint and the
    unrounded probe values behind the fingerprint."""
    return {
        "name": encoder.name,
        "dim": int(encoder.dim),
        "fingerprint": encoder.fingerprint(),
        "probe": encoder.probe_values(),
    }


#: Largest probe-value difference still taken for float noise when fingerprints differ.
PROBE_TOLERANCE = 0.005


def model_mismatch(recorded: dict[str, Any], found: dict[str, Any]) -> str | None:
    """Which of name, dim or fingerprint tells ``found`` (an :func:`encoder_spec`) apart from
    ``recorded``, or None when it is the same model. Names compare with :func:`same_name` and
    fingerprints with :func:`same_weights`, the rules :class:`slimvec.compat.SpaceIdentity`
    applies too; a collection's encoder must also keep its name (an alias is refused, since
    the name is what ``slimvec.open`` loads the model by)."""
    if not same_name(recorded["name"], found["name"]):
        return "name"
    if recorded["dim"] != found["dim"]:
        return "dim"
    if same_weights(
        recorded["fingerprint"], recorded.get("probe"), found["fingerprint"], found.get("probe")
    ):
        return None
    return "fingerprint"


def same_name(a: str, b: str) -> bool:
    """Whether two model names are one name: case and surrounding blanks do not count (the
    Hugging Face hub resolves ``all-minilm-l6-v2`` to ``all-MiniLM-L6-v2``)."""
    return a.strip().casefold() == b.strip().casefold()


def same_weights(
    fingerprint_a: str,
    probe_a: Sequence[float] | None,
    fingerprint_b: str,
    probe_b: Sequence[float] | None,
) -> bool:
    """Whether two fingerprints (with their probe values, when recorded) are one model's.

    Differing fingerprints whose probe values all agree within ``PROBE_TOLERANCE`` are the
    same model on another CPU (a rounded digit flipped); another model moves them by far more
    (all-MiniLM-L6-v2 vs the same model fine-tuned one epoch on Debian pairs: 0.035; vs
    multilingual-e5-small: 0.86).
    """
    return fingerprint_a == fingerprint_b or probes_agree(probe_a, probe_b)


def probes_agree(a: Sequence[float] | None, b: Sequence[float] | None) -> bool:
    """Whether two recorded probe-value lists are one model's up to float noise."""
    if a is None or b is None or len(a) != len(b):
        return False
    return bool(np.max(np.abs(np.subtract(a, b))) <= PROBE_TOLERANCE)
