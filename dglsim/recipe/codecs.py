"""A run's link codecs (dglsim.quant): one per link, seeded alike wherever the run executes."""

from __future__ import annotations

from dglsim.quant import Codec
from dglsim.recipe.config import RunConfig
from dglsim.recipe.streams import codec_seeds

__all__ = ["link_codecs"]


def link_codecs(cfg: RunConfig) -> list[Codec] | None:
    """One codec per link, each with its own random stream drawn from the run's seed (the same in
    a simulated run and in the real ranks of dglsim.ranks, which then encode alike); None for float links."""
    if cfg.quant == "none":
        return None
    return [Codec(cfg.quant_config(), seed=s) for s in codec_seeds(cfg)]
