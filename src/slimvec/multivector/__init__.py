"""Multi-vector (late-interaction) retrieval: MUVERA FDE first pass, exact MaxSim rerank, pooling.

Building blocks over CSR token sets (``tokens`` (T, dim) + ``offsets`` (n + 1,)):
``FDE`` (token set -> one vector), ``TokenCodes`` + ``maxsim`` (compiled exact scoring over
f32/f16/int8 token codes), ``TokenPooler`` (index-time token pooling), ``fde_shortlist`` and
``rerank`` (the two ends of the funnel).
"""

from slimvec.kernels.maxsim import TokenCodes, maxsim, maxsim_reference
from slimvec.multivector.pooling import TokenPooler
from slimvec.multivector.rerank import SegmentedTokens, fde_shortlist, rerank
from slimvec.transforms.fde import FDE, pack_token_sets

__all__ = [
    "FDE",
    "SegmentedTokens",
    "TokenCodes",
    "TokenPooler",
    "fde_shortlist",
    "maxsim",
    "maxsim_reference",
    "pack_token_sets",
    "rerank",
]
