"""Codecs: how a vector is stored (float32/16/8, int8, binary, multi-bit binary, RaBitQ)."""

from slimvec.codecs.base import Codec
from slimvec.codecs.binary import BinaryCodec
from slimvec.codecs.floats import Float8Codec, Float16Codec, Float32Codec
from slimvec.codecs.int8 import Int8Codec
from slimvec.codecs.rabitq import RaBitQCodec
from slimvec.spec import StageSpec


def make_codec(stage: StageSpec, dim: int) -> Codec:
    """The codec a spec stage names, for vectors of ``dim`` dims."""
    if stage.codec == "binary":
        return BinaryCodec(dim, stage.bits)
    if stage.codec == "rabitq":
        return RaBitQCodec(dim, stage.bits, stage.qbits)
    simple = {"f32": Float32Codec, "f16": Float16Codec, "f8": Float8Codec, "int8": Int8Codec}
    return simple[stage.codec](dim)


__all__ = [
    "BinaryCodec",
    "Codec",
    "Float8Codec",
    "Float16Codec",
    "Float32Codec",
    "Int8Codec",
    "RaBitQCodec",
    "make_codec",
]
