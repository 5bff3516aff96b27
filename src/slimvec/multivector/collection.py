"""Multi-vector collections: token sets in, MUVERA encodings for the funnel, exact MaxSim last.

The collection is the ordinary local one with another row format
(:class:`slimvec.multivector.rows.TokenRows`: what is stored per item, how the funnel and
exact MaxSim score it); here are only how one is made and what it adds to ``info``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from slimvec.collection import Collection
from slimvec.errors import InvalidInputError
from slimvec.multivector.pooling import TokenPooler
from slimvec.multivector.rows import DEFAULT_SPEC, TokenRows
from slimvec.spec import parse_spec
from slimvec.transforms.fde import FDE
from slimvec.validation import check_dim, check_options


class MultiVectorCollection(Collection):
    """A collection of token sets. Create with ``slimvec.create(path, dim, multivector=True)``.

    Options (recorded in the manifest): ``fde`` — dict of :class:`FDE` parameters (k_sim=5,
    d_proj=16, r_reps=20, final_dim=None, seed=0, fill_empty=False); ``pool_factor`` —
    token pooling at index time (1 = off, 2 halves stored tokens); ``token_code`` — "f16"
    (default) or "int8" (a quarter of float32) for the stored tokens MaxSim reads; a spec
    ending ``maxsim:res1/2/4`` or ``maxsim:pqM`` stores them as residual codes instead
    (``kernels.residual``, ``kernels.pqres``).
    """

    default_spec = DEFAULT_SPEC
    row_format = TokenRows

    @classmethod
    def create_multivector(
        cls,
        path: str | Path,
        dim: int | None,
        metric: str,
        spec: str,
        encoder: Any,
        fde: dict[str, Any] | None = None,
        pool_factor: int = 1,
        token_code: str | None = None,
        keyword: dict[str, Any] | None = None,
    ) -> Collection:
        if token_code not in (None, "f16", "int8"):
            raise InvalidInputError(f"token_code must be 'f16' or 'int8', got {token_code!r}")
        compressed = parse_spec(spec).stages[-1].token_code
        if compressed is not None and token_code is not None:
            raise InvalidInputError(
                f"{spec!r} stores residual token codes; drop token_code={token_code!r}"
            )
        token_code = compressed or token_code or "f16"
        TokenPooler(pool_factor)  # validates
        if dim is None and encoder is None:
            raise InvalidInputError("give dim (the token vector dimension) or an encoder")
        if dim is None:
            from slimvec.encoders import get_encoder

            token_dim = check_dim(get_encoder(encoder).dim)
        else:
            token_dim = check_dim(dim)  # before FDE allocates projections for it
        # Empty document buckets stay empty by default: the paper's fill-from-nearest cost
        # 0.917 vs 0.973 recall of exact MaxSim's top-10 at 5% reranked (MiniLM tokens, and
        # the same drop in muvera-python); pass fde={"fill_empty": True} for the paper's.
        fde = check_options({} if fde is None else fde, FDE, "fde", "dim")
        fde_params = FDE(token_dim, **{"fill_empty": False, **fde}).params()
        extra = {
            "multivector": {
                "fde": fde_params,
                "pool_factor": int(pool_factor),
                "token_code": token_code,
            }
        }
        return cls.create(path, dim, metric, spec, encoder, extra=extra, keyword=keyword)

    def _embed(self, texts: list[str], kind: str, batch_size: int | None) -> Any:
        return self.encoder.encode_tokens(texts, kind=kind, batch_size=batch_size)

    def info(self) -> dict[str, Any]:
        out = super().info()
        view = self._view
        out["multivector"] = {
            **view.manifest.extra["multivector"],
            "fde_dim": view.rows.fde.out_dim,
            "stored_tokens_per_item": round(
                view.rows.stored_tokens(view) / max(view.manifest.rows, 1), 1
            ),
        }
        out["float32_bytes_per_vector"] = None
        return out
