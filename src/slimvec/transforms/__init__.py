"""Transforms: what a vector becomes before it is encoded (prefix, rotation, ...)."""

from slimvec.transforms.base import Transform, normalise_rows
from slimvec.transforms.matryoshka import Matryoshka
from slimvec.transforms.pca import PCARotation

TRANSFORMS: dict[str, type[Transform]] = {"mrl": Matryoshka, "pca": PCARotation}

__all__ = ["TRANSFORMS", "Matryoshka", "PCARotation", "Transform", "normalise_rows"]
