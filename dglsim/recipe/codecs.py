"""A run's link codecs (dglsim.quant): one per link, seeded alike wherever the run executes."""

from __future__ import annotations

from dglsim.models import DecoupledNet
from dglsim.quant import Codec
from dglsim.recipe.config import RunConfig
from dglsim.recipe.streams import codec_seeds

__all__ = ["link_codecs", "expected_link_bytes"]


def link_codecs(cfg: RunConfig) -> list[Codec] | None:
    """One codec per link, each with its own random stream drawn from the run's seed (the same in
    a simulated run and in the real ranks of dglsim.ranks, which then encode alike); None for float links."""
    if cfg.quant == "none":
        return None
    return [Codec(cfg.quant_config(), seed=s) for s in codec_seeds(cfg)]


def expected_link_bytes(cfg: RunConfig, net: DecoupledNet, batch_size: int) -> list[int]:
    """Bytes of one item on each link under the run's quantizer (codebook messages aside), with
    its int64 labels: what sets a link-bound run's pace."""
    q = cfg.quant_config()
    return [q.item_bytes((batch_size, *shape)) + 8 * batch_size for shape in net.output_shapes()[:-1]]
