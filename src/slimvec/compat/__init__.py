"""Living with more than one embedding model: space identity, score calibration, and
model-agnostic relative representations. Adapters between spaces are transforms
(``slimvec.transforms.adapter``)."""

from slimvec.compat.calibration import ScoreCalibrator, probe_scores
from slimvec.compat.relative import RelativeEncoder, RelativeRepresentation
from slimvec.compat.spaces import EncoderLike, SpaceIdentity
from slimvec.errors import SpaceMismatchError

__all__ = [
    "EncoderLike",
    "RelativeEncoder",
    "RelativeRepresentation",
    "ScoreCalibrator",
    "SpaceIdentity",
    "SpaceMismatchError",
    "probe_scores",
]
