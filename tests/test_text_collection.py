"""Collections with an encoder: texts in, the model recorded, other models refused."""

import json

import numpy as np
import pytest

import slimvec
from slimvec.encoders import Encoder

DOCS = [
    "Perl module to extract data from an HTML table",
    "lossless data compression library with a fast decoder",
    "command-line tool to convert images between formats",
    "Python bindings for the SQLite embedded database",
    "fonts with wide Unicode coverage for terminals",
]


class HashEncoder(Encoder):
    """A tiny deterministic encoder: lets tests swap models without loading torch."""

    dim = 16

    def __init__(self, name="hash-16", seed=0):
        self.name = name
        self.seed = seed

    def _encode(self, texts, kind, batch_size):
        rows = [
            np.random.default_rng([self.seed, *map(ord, t[:32])]).standard_normal(self.dim)
            for t in texts
        ]
        return np.array(rows, np.float32)


@pytest.fixture(scope="module")
def minilm_encoder():
    from slimvec.encoders import get_encoder

    return get_encoder("all-MiniLM-L6-v2")


def test_add_and_search_texts_with_a_real_model(tmp_path, minilm_encoder):
    col = slimvec.create(tmp_path / "c", encoder=minilm_encoder, spec="f32")
    assert col.dim == 384
    ids = col.add_texts(DOCS, metadata=[{"i": i} for i in range(len(DOCS))])
    res = col.search_texts(["sqlite python", "compress files", "html table parser"], k=1)
    assert res.ids[:, 0].tolist() == [ids[3], ids[1], ids[0]]
    assert col.texts([ids[2]]) == [DOCS[2]]
    recorded = json.loads((tmp_path / "c" / "MANIFEST.json").read_text())["extra"]["encoder"]
    assert recorded["dim"] == 384 and recorded["fingerprint"] == minilm_encoder.fingerprint()
    reopened = slimvec.open(tmp_path / "c")
    assert reopened.search_texts("sqlite python", k=1).ids[0, 0] == ids[3]


def test_another_model_behind_the_same_name_is_refused(tmp_path):
    slimvec.create(tmp_path / "c", encoder=HashEncoder(seed=0)).add_texts(DOCS)
    with pytest.raises(slimvec.InvalidInputError, match="fingerprint differs"):
        slimvec.open(tmp_path / "c", encoder=HashEncoder(seed=1))
    with pytest.raises(slimvec.InvalidInputError, match="name differs"):
        slimvec.open(tmp_path / "c", encoder=HashEncoder(name="other", seed=0))
    assert len(slimvec.open(tmp_path / "c", encoder=HashEncoder(seed=0))) == len(DOCS)


def test_float_noise_that_flips_the_fingerprint_is_not_another_model(tmp_path):
    """Another CPU can flip a rounded digit of the fingerprint; the recorded probe values tell
    that noise (accepted) from another model (refused)."""
    slimvec.create(tmp_path / "c", encoder=HashEncoder(seed=0)).add_texts(DOCS)
    path = tmp_path / "c" / "MANIFEST.json"
    manifest = json.loads(path.read_text())
    recorded = manifest["extra"]["encoder"]
    recorded["fingerprint"] = "0" * 16  # as if written on a machine that rounded one digit up
    recorded["probe"][0] += 0.001
    path.write_text(json.dumps(manifest))
    assert len(slimvec.open(tmp_path / "c", encoder=HashEncoder(seed=0))) == len(DOCS)
    recorded["probe"][0] += 0.05  # beyond float noise: another model
    path.write_text(json.dumps(manifest))
    with pytest.raises(slimvec.InvalidInputError, match="fingerprint differs"):
        slimvec.open(tmp_path / "c", encoder=HashEncoder(seed=0))


def test_texts_need_an_encoder(tmp_path):
    col = slimvec.create(tmp_path / "c", dim=16)
    with pytest.raises(slimvec.InvalidInputError, match="has no encoder"):
        col.add_texts(DOCS)
    with pytest.raises(slimvec.InvalidInputError, match="gives 16-dim"):
        slimvec.create(tmp_path / "d", dim=8, encoder=HashEncoder())


@pytest.mark.parametrize("texts", [[], [1, 2], None])
def test_bad_texts(tmp_path, texts):
    col = slimvec.create(tmp_path / "c", encoder=HashEncoder())
    with pytest.raises(slimvec.InvalidInputError):
        col.add_texts(texts)
    assert len(col) == 0


def test_vectors_with_texts_must_match_in_length(tmp_path):
    col = slimvec.create(tmp_path / "c", dim=16)
    with pytest.raises(slimvec.InvalidInputError, match="2 texts for 3 vectors"):
        col.add(np.ones((3, 16)), texts=["a", "b"])
