import pytest

import slimvec
from slimvec.spec import DEFAULT_SPEC, StageSpec, parse_spec


@pytest.mark.parametrize(
    "text",
    [
        DEFAULT_SPEC,
        "f32",
        "int8*4 > f32",
        "pca:256 | binary*20 > int8*4 > f32",
        "mrl:512 | binary:2@128*30 > f16",
        "mrl:256, pca:128 | f8",
    ],
)
def test_canonical_form_round_trips(text):
    spec = parse_spec(text)
    assert parse_spec(str(spec)) == spec
    assert str(parse_spec(str(spec))) == str(spec)


def test_parse_reads_every_part():
    spec = parse_spec(" PCA:256 | binary:3@128 * 40 > int8 *4 > f32 ")
    assert [(t.kind, t.dim) for t in spec.transforms] == [("pca", 256)]
    assert spec.stages == (
        StageSpec("binary", 3, 128, 40),
        StageSpec("int8", 1, None, 4),
        StageSpec("f32", 1, None, None),
    )


def test_missing_keep_factor_gets_the_default():
    assert str(parse_spec("binary > f32")) == "binary*10 > f32"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "non-empty"),
        ("binary > f64", "unknown stage 'f64'"),
        ("foo:3 | f32", "unknown transform"),
        ("binary*4 > f32*2", "last stage"),
        ("binary*4 > int8*8 > f32", "must not increase"),
        ("int8:2", "only 'binary' and 'rabitq' take a bit count"),
        ("binary:5", "1 to 4 bits"),
        ("a | b | c", "use '|' once"),
        ("binary >  > f32", "empty element"),
        ("f32@4", "too few dims"),
    ],
)
def test_bad_specs_say_what_is_wrong(text, message):
    with pytest.raises(slimvec.SpecError, match=message):
        parse_spec(text)


def test_spec_is_checked_against_the_dimension(tmp_path):
    with pytest.raises(slimvec.SpecError, match="only 64"):
        slimvec.create(tmp_path / "a", dim=64, spec="pca:128 | f32")
    with pytest.raises(slimvec.SpecError, match="multiple of 8"):
        slimvec.create(tmp_path / "b", dim=100, spec="binary*10 > f32")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
