"""Transforms: what a vector becomes before it is encoded (prefix, rotation, ...)."""

from slimvec.transforms.base import Transform, normalise_rows
from slimvec.transforms.matryoshka import Matryoshka
from slimvec.transforms.pca import PCARotation
from slimvec.transforms.rotation import RandomRotation

TRANSFORMS: dict[str, type[Transform]] = {
    "mrl": Matryoshka,
    "pca": PCARotation,
    "rot": RandomRotation,
}

__all__ = [
    "TRANSFORMS",
    "Matryoshka",
    "PCARotation",
    "RandomRotation",
    "Transform",
    "normalise_rows",
]
