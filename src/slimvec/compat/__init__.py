"""Living with more than one embedding model: space identity, adapters between spaces, score
calibration, and model-agnostic relative representations."""

from slimvec.compat.adapters import (
    ADAPTERS,
    Adapter,
    AdapterReport,
    LinearAdapter,
    ProcrustesAdapter,
    ResidualMLPAdapter,
    ScoreMatchingAdapter,
    adapter_quality,
    fit_adapter,
    load_adapter,
)
from slimvec.compat.calibration import ScoreCalibrator, probe_scores
from slimvec.compat.relative import RelativeEncoder, RelativeRepresentation
from slimvec.compat.spaces import EncoderLike, SpaceIdentity
from slimvec.errors import SpaceMismatchError

__all__ = [
    "ADAPTERS",
    "Adapter",
    "AdapterReport",
    "EncoderLike",
    "LinearAdapter",
    "ProcrustesAdapter",
    "RelativeEncoder",
    "RelativeRepresentation",
    "ResidualMLPAdapter",
    "ScoreCalibrator",
    "ScoreMatchingAdapter",
    "SpaceIdentity",
    "SpaceMismatchError",
    "adapter_quality",
    "fit_adapter",
    "load_adapter",
    "probe_scores",
]
