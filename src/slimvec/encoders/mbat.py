"""JSON records -> one fixed-length vector, by MBAT with orthogonal binding.

MBAT (Gallant & Okaywe, "Representing objects, relations and sequences", 2013; the orthogonal
variant of the 2022 follow-up) binds every value to the *key path* it sits at with a
path-specific orthogonal map and adds the results:

    v(record) = normalise( sum over key paths p of  w_p * T_p( normalise( sum of leaves at p )))

Because each ``T_p`` is orthogonal, ``<T_p a, T_p b> = <a, b>``: two records that share a value
at the same path agree on that term exactly, while values at *different* paths land in nearly
orthogonal directions (the ``T_p`` are independent random rotations) and barely interfere. So
the cosine of a partial record (a query) with a full one is, up to O(1/sqrt(dim)) noise, the sum
over the query's paths of the per-field similarities — a soft, weighted field match.

* ``T_p`` is a seeded structured rotation: three rounds of (random permutation, random signs,
  orthonormal DCT-II) — the randomised-Hadamard construction, with the DCT standing in for the
  Walsh–Hadamard matrix because it is orthogonal at *any* dimension (384 is not a power of
  two). A path stores O(dim) integers derived from a hash of the path; nothing is dim²-sized.
* Leaves: strings go through the text encoder (``"text"`` fields) or are hashed to seeded
  random unit vectors (``"category"``: exact match or nothing); numbers use a smooth
  fractional-power (random Fourier feature) code whose inner products follow a Gaussian kernel
  ``exp(-(x-y)^2 / 2 s^2)`` with a per-field length scale ``s``; booleans and nulls are
  categories. List elements are a bag at the list's own path (``{"tags": ["a", "b"]}`` has
  two leaves at ``tags``); nested objects extend the path (``{"a": {"b": 1}}`` -> ``a.b``).

Key paths are *not* learned: a path the encoder never saw simply gets its own seeded rotation.
With ``fields`` (a schema: dotted path -> kind) every path outside it is refused, at add and at
query time, so a misspelt query key fails loudly instead of silently matching nothing; without
``fields`` kinds are inferred (str -> text, number -> number with scale 1, bool/null ->
category) and an unknown query key only adds a term no stored record shares: every score is
scaled by the same factor plus ~1/sqrt(dim) noise, so it dilutes the other fields a little.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.fft import dct

from slimvec.encoders.base import PROBE_TEXTS, Encoder, Kind, check_kind
from slimvec.encoders.registry import NAMED_ENCODERS
from slimvec.errors import InvalidInputError

__all__ = ["JSONEncoder", "JSONInputError", "UnknownFieldError"]

NAME_PREFIX = "mbat-v1("
DEFAULT_MAX_DEPTH = 32
MAX_MAX_DEPTH = 200  # deeper limits would hit Python's recursion limit before ours
ROUNDS = 3  # (permute, flip, DCT) rounds per rotation: two already mix well, three for margin
_KINDS = ("text", "category", "number")
_NAME = re.compile(
    r"^mbat-v1\(text=(?P<text>.*);dim=(?P<dim>\d+);seed=(?P<seed>\d+);"
    r"max_depth=(?P<depth>\d+);fields=(?P<fields>.*)\)$",
    re.S,
)


class JSONInputError(InvalidInputError):
    """A record is not encodable JSON (cycle, non-string key, NaN/inf, too deep, bad type)."""


class UnknownFieldError(JSONInputError):
    """A record has a key path outside the encoder's ``fields`` schema."""


def _hash_seed(*parts: Any) -> int:
    digest = hashlib.blake2b(json.dumps(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def _display(path: tuple[str, ...]) -> str:
    return ".".join(path) if path else "$"


def _parse_kind(spec: Any, path: str) -> tuple[str, float]:
    """``"text"``, ``"category"``, ``"number"`` or ``"number:SCALE"`` -> (kind, scale)."""
    if isinstance(spec, str):
        kind, _, scale = spec.partition(":")
        if kind in _KINDS and (not scale or kind == "number"):
            try:
                value = float(scale) if scale else 1.0
            except ValueError:
                value = -1.0
            if math.isfinite(value) and value > 0:
                return kind, value
    raise InvalidInputError(
        f"fields[{path!r}] must be 'text', 'category', 'number' or 'number:SCALE' with a "
        f"positive SCALE (the distance at which two numbers still score ~0.6), got {spec!r}"
    )


class _Rotation:
    """A seeded orthogonal map of R^dim: ROUNDS x (permutation, sign flips, orthonormal DCT)."""

    def __init__(self, dim: int, seed: int):
        rng = np.random.default_rng(seed)
        self.perms = [rng.permutation(dim) for _ in range(ROUNDS)]
        self.signs = [rng.choice(np.array([-1.0, 1.0]), dim) for _ in range(ROUNDS)]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        for perm, signs in zip(self.perms, self.signs, strict=True):
            x = dct(x[:, perm] * signs, type=2, norm="ortho", axis=1)
        return x


class JSONEncoder(Encoder):
    """Encodes JSON records (dicts, lists, strings, numbers, booleans, null) as unit vectors.

    ``text_encoder``: any slimvec ``Encoder`` (or a model name) for text leaves; the JSON
    vectors have its dimension. ``fields``: optional schema, dotted key path -> ``"text"``,
    ``"category"``, ``"number"`` or ``"number:SCALE"``; with it, paths outside the schema are
    refused. ``weights``: optional path -> weight of that field's term (default 1 each).
    ``seed`` picks the rotations, category and number codes; ``max_depth`` bounds nesting.

    ``encode(records)`` takes a list of records (one dict alone counts as one record; a plain
    string is a JSON string, i.e. a text leaf at the root path ``$``). The name records the
    whole configuration, so ``slimvec.open`` rebuilds the encoder from the manifest when its
    text encoder is loadable by name.
    """

    default_batch_size = 32
    name_prefix = NAME_PREFIX

    def __init__(
        self,
        text_encoder: Encoder | str | None = None,
        fields: Mapping[str, str] | None = None,
        weights: Mapping[str, float] | None = None,
        seed: int = 0,
        max_depth: int = DEFAULT_MAX_DEPTH,
    ):
        from slimvec.encoders.registry import get_encoder

        self.text = get_encoder(text_encoder)
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise InvalidInputError(f"seed must be a non-negative integer, got {seed!r}")
        if (
            isinstance(max_depth, bool)
            or not isinstance(max_depth, int)
            or not 1 <= max_depth <= MAX_MAX_DEPTH
        ):
            raise InvalidInputError(
                f"max_depth must be an integer in 1..{MAX_MAX_DEPTH}, got {max_depth!r}"
            )
        if fields is not None and not isinstance(fields, Mapping):
            raise InvalidInputError(
                f"fields must map dotted key paths to kinds, got {type(fields).__name__}"
            )
        self.fields = None if fields is None else {str(p): k for p, k in fields.items()}
        self._kinds = {p: _parse_kind(k, p) for p, k in (self.fields or {}).items()}
        self.weights = self._check_weights(weights)
        self.seed = seed
        self.max_depth = max_depth
        self.dim = int(self.text.dim)
        config = json.dumps(
            {"fields": self.fields, "weights": self.weights}, sort_keys=True, separators=(",", ":")
        )
        self.name = (
            f"{NAME_PREFIX}text={self.text.name};dim={self.dim};seed={seed};"
            f"max_depth={max_depth};fields={config})"
        )
        self._rotations: dict[tuple[str, ...], _Rotation] = {}
        self._categories: dict[str, np.ndarray] = {}
        rng = np.random.default_rng(_hash_seed("numbers", seed))
        self._freqs = rng.standard_normal(self.dim // 2)

    @classmethod
    def from_name(cls, name: str, device: str = "cpu") -> JSONEncoder:
        """Rebuild the encoder a manifest names (its text encoder loaded by name)."""
        match = _NAME.match(name)
        if match is None:
            raise InvalidInputError(f"{name!r} is not a JSONEncoder name (mbat-v1(...))")
        from slimvec.encoders.registry import get_encoder

        config = json.loads(match["fields"])
        encoder = cls(
            get_encoder(match["text"], device=device),
            fields=config["fields"],
            weights=config["weights"],
            seed=int(match["seed"]),
            max_depth=int(match["depth"]),
        )
        if encoder.dim != int(match["dim"]):
            raise InvalidInputError(
                f"text encoder {match['text']!r} gives {encoder.dim}-dim vectors, the JSON "
                f"encoder was built at {match['dim']}"
            )
        return encoder

    @staticmethod
    def _check_weights(weights: Mapping[str, float] | None) -> dict[str, float] | None:
        if weights is None:
            return None
        if not isinstance(weights, Mapping):
            raise InvalidInputError(
                f"weights must map dotted key paths to numbers, got {type(weights).__name__}"
            )
        out = {}
        for path, w in weights.items():
            if isinstance(w, bool) or not isinstance(w, int | float) or not (w > 0):
                raise InvalidInputError(f"weights[{path!r}] must be a positive number, got {w!r}")
            out[str(path)] = float(w)
        return out

    # -- the encoder contract ---------------------------------------------------------------
    def encode(  # type: ignore[override]
        self,
        records: Any,
        kind: Kind = "doc",
        *,
        batch_size: int | None = None,
        progress: bool | None = None,
        normalize: bool = True,
    ) -> np.ndarray:
        """(n, dim) float32 vectors of ``records``; all records are checked before any is
        encoded, so bad input raises a ``JSONInputError`` naming the record and key path."""
        kind = check_kind(kind)
        batch_size = self._check_batch_size(batch_size)
        records = self._as_records(records)
        leaves = self._leaves(records)  # path -> (record indices, kinds, values)
        return self._vectors(leaves, len(records), kind, batch_size, progress, normalize)

    def _probe(self) -> tuple[np.ndarray, np.ndarray]:
        """The fingerprint's probe texts go in as root text leaves, whatever the schema: they
        identify the text model, the seed and the dimension."""
        cached = getattr(self, "_probe_cache", None)
        if cached is None:
            n = len(PROBE_TEXTS)
            leaves = {(): (list(range(n)), ["text"] * n, list(PROBE_TEXTS))}
            emb = self._vectors(leaves, n, "doc", self.default_batch_size, False, True)
            emb = emb.astype(np.float64)
            cached = ((emb @ emb.T)[np.triu_indices(len(emb), 1)], emb[:2, :4].ravel())
            self._probe_cache = cached
        return cached

    def _vectors(self, leaves: dict, n: int, kind: str, batch_size: int, progress, normalize):
        """Bind and add checked leaves: one text-encoder call, then one rotation per path."""
        texts = sorted(
            {v for _, kinds, vals in leaves.values() for k, v in zip(kinds, vals) if k == "text"}
        )
        text_vecs = (
            self.text.encode(texts, kind=kind, batch_size=batch_size, progress=progress)
            if texts
            else np.zeros((0, self.dim), np.float32)
        )
        text_row = {t: i for i, t in enumerate(texts)}
        out = np.zeros((n, self.dim), dtype=np.float64)
        for path, (rec, kinds, values) in leaves.items():
            vecs = self._leaf_vectors(path, kinds, values, text_vecs, text_row)
            rows, local = np.unique(np.asarray(rec), return_inverse=True)
            bundle = np.zeros((len(rows), self.dim))
            np.add.at(bundle, local, vecs)
            norms = np.linalg.norm(bundle, axis=1, keepdims=True)
            bundle /= np.where(norms > 0, norms, 1.0)
            weight = (self.weights or {}).get(_display(path), 1.0)
            out[rows] += weight * self._rotation(path)(bundle)
        if normalize:
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            out /= np.where(norms > 0, norms, 1.0)
        return out.astype(np.float32)

    def _encode_tokens(self, texts: list[str], kind: str, batch_size: int) -> list[np.ndarray]:
        raise InvalidInputError("a JSONEncoder gives one vector per record, not per token")

    # -- checking and flattening records -----------------------------------------------------
    @staticmethod
    def _as_records(records: Any) -> list[Any]:
        if isinstance(records, np.ndarray):
            records = records.tolist()
        if isinstance(records, dict | str | int | float | bool) or records is None:
            return [records]
        if not isinstance(records, Sequence):
            raise JSONInputError(
                f"records must be a list of JSON values (dicts, lists, str, numbers, bool, "
                f"None), got {type(records).__name__}"
            )
        if not len(records):
            raise JSONInputError("no records given; pass a non-empty list of records")
        return list(records)

    def _leaves(self, records: list[Any]) -> dict[tuple[str, ...], tuple[list, list, list]]:
        """Check every record and group their leaves by key path."""
        leaves: dict[tuple[str, ...], tuple[list, list, list]] = {}
        for i, record in enumerate(records):
            if not self._walk(record, (), 0, set(), i, leaves):
                raise JSONInputError(
                    f"record {i} has no values to encode (empty object or list); drop it or "
                    f"give it at least one field"
                )
        return leaves

    def _walk(
        self, value: Any, path: tuple[str, ...], depth: int, stack: set, i: int, leaves: dict
    ) -> int:
        """Check ``value`` and append its leaves to ``leaves``; returns how many it added."""
        where = f"record {i} at {_display(path)!r}"
        if isinstance(value, dict | list | tuple):
            if id(value) in stack:
                raise JSONInputError(
                    f"{where}: the record contains itself (a reference cycle); JSON records "
                    f"must be trees"
                )
            if depth >= self.max_depth:
                raise JSONInputError(
                    f"{where}: nesting deeper than max_depth={self.max_depth}; flatten the "
                    f"record or create the encoder with a larger max_depth"
                )
            stack.add(id(value))
            added = 0
            if isinstance(value, dict):
                for key, item in value.items():
                    if not isinstance(key, str):
                        raise JSONInputError(
                            f"{where}: key {key!r} is a {type(key).__name__}; JSON object keys "
                            f"must be strings (convert them with str())"
                        )
                    added += self._walk(item, (*path, key), depth + 1, stack, i, leaves)
            else:  # list elements are a bag at the list's own path
                for item in value:
                    added += self._walk(item, path, depth + 1, stack, i, leaves)
            stack.discard(id(value))
            return added
        kind = self._kind_of(value, path, where)
        rec, kinds, values = leaves.setdefault(path, ([], [], []))
        rec.append(i)
        kinds.append(kind)
        values.append(value)
        return 1

    def _kind_of(self, value: Any, path: tuple[str, ...], where: str) -> str:
        if isinstance(value, float) and not math.isfinite(value):
            raise JSONInputError(
                f"{where}: {value!r} is not a JSON number; replace NaN/inf by null or drop the "
                f"field"
            )
        if isinstance(value, bool) or value is None:
            inferred = "category"
        elif isinstance(value, str):
            inferred = "text"
        elif isinstance(value, int | float | np.integer | np.floating):
            inferred = "number"
        else:
            raise JSONInputError(
                f"{where}: {type(value).__name__} is not a JSON type (dict, list, str, int, "
                f"float, bool, None)"
            )
        if self.fields is None:
            return inferred
        declared = self._kinds.get(_display(path))
        if declared is None:
            raise UnknownFieldError(
                f"{where}: key path {_display(path)!r} is not in the encoder's fields "
                f"{sorted(self._kinds)}; drop it from the record or add it to fields (a new "
                f"encoder, hence a new collection)"
            )
        kind = declared[0]
        if kind == "number" and inferred != "number":
            raise JSONInputError(f"{where}: field is declared 'number' but holds {value!r}")
        if kind == "text" and inferred != "text":
            raise JSONInputError(f"{where}: field is declared 'text' but holds {value!r}")
        return kind

    # -- leaf codes and rotations ------------------------------------------------------------
    def _leaf_vectors(self, path, kinds, values, text_vecs, text_row) -> np.ndarray:
        out = np.empty((len(values), self.dim))
        kinds_arr = np.asarray(kinds)
        text = np.flatnonzero(kinds_arr == "text")
        if len(text):
            out[text] = text_vecs[[text_row[values[j]] for j in text]]
        number = np.flatnonzero(kinds_arr == "number")
        if len(number):
            scale = self._kinds.get(_display(path), ("number", 1.0))[1]
            x = np.asarray([float(values[j]) for j in number]) / scale
            out[number] = self._number_code(x)
        for j in np.flatnonzero(kinds_arr == "category"):
            out[j] = self._category(values[j])
        return out

    def _number_code(self, x: np.ndarray) -> np.ndarray:
        """Random Fourier features: <code(x), code(y)> ~= exp(-(x - y)^2 / 2), unit norm."""
        phase = np.outer(x, self._freqs)
        code = np.zeros((len(x), self.dim))
        half = len(self._freqs)
        code[:, :half] = np.cos(phase)
        code[:, half : 2 * half] = np.sin(phase)
        return code / math.sqrt(half)

    def _category(self, value: Any) -> np.ndarray:
        key = json.dumps(value)
        vec = self._categories.get(key)
        if vec is None:
            vec = np.random.default_rng(_hash_seed("category", self.seed, key)).standard_normal(
                self.dim
            )
            vec /= np.linalg.norm(vec)
            self._categories[key] = vec
        return vec

    def _rotation(self, path: tuple[str, ...]) -> _Rotation:
        rot = self._rotations.get(path)
        if rot is None:
            rot = _Rotation(self.dim, _hash_seed("path", self.seed, list(path)))
            self._rotations[path] = rot
        return rot


# -- collections of JSON records (used by Collection.add_json / search_json) ------------------
def json_encoder_of(collection: Any) -> JSONEncoder:
    """The collection's encoder, which must be a ``JSONEncoder``."""
    encoder = collection.encoder
    if not isinstance(encoder, JSONEncoder):
        raise InvalidInputError(
            f"this collection's encoder is {encoder.name!r}, not a JSONEncoder; create the "
            f"collection with slimvec.create(path, encoder=JSONEncoder(text_encoder, ...))"
        )
    return encoder


def add_json(collection: Any, records: Any, ids: Any = None, metadata: Any = None) -> np.ndarray:
    """Encode ``records`` (documents) and add them; every record is checked first, so a bad
    one raises before anything is written. Returns the ids."""
    vectors = json_encoder_of(collection).encode(records, kind="doc")
    return collection.add(vectors, ids=ids, metadata=metadata)


def search_json(collection: Any, partial_records: Any, k: int = 10) -> Any:
    """Search with (partial) records as queries: fields left out simply do not count."""
    vectors = json_encoder_of(collection).encode(partial_records, kind="query")
    return collection.search(vectors, k=k)


NAMED_ENCODERS[JSONEncoder.name_prefix] = JSONEncoder.from_name
