"""Named links between simulated devices: bandwidth per direction and latency per message.

Bandwidths are the published per-direction rates. Latencies are not datasheet figures: they
are typical one-message latencies of each interconnect (order of magnitude), declared here so
a study states them; set `latency` in a study to use another value.
"""

from __future__ import annotations

from dataclasses import dataclass

from dglsim.errors import InvalidArgument

__all__ = ["Link", "LINKS", "link"]


@dataclass(frozen=True)
class Link:
    name: str
    bandwidth: float  # bytes/s, one direction
    latency: float  # seconds per message (typical, not a datasheet figure)
    source: str

    def describe(self) -> str:
        return f"{self.name} ({self.bandwidth / 1e9:.4g} GB/s, {self.latency * 1e6:g} us)"


LINKS: dict[str, Link] = {each.name: each for each in (
    # A100 datasheet: third-generation NVLink, 600 GB/s total, i.e. 300 GB/s each way.
    Link("nvlink", 300e9, 2e-6, "NVIDIA A100 datasheet: NVLink 600 GB/s bidirectional (300 GB/s per direction); latency typical"),
    # PCI Express 4.0 x16: 16 GT/s x 16 lanes x 128/130 encoding / 8 = 31.5 GB/s per direction.
    Link("pcie4", 31.5e9, 2e-6, "PCI Express Base Specification 4.0: 16 GT/s per lane, 128b/130b, x16 = 31.5 GB/s per direction; latency typical"),
    # IEEE 802.3 100GBASE: 100 Gbit/s = 12.5 GB/s; RDMA-class latency.
    Link("100gbe", 12.5e9, 5e-6, "IEEE 802.3 100 Gbit/s Ethernet = 12.5 GB/s; latency typical of RDMA (RoCE)"),
    # IEEE 802.3 10GBASE: 10 Gbit/s = 1.25 GB/s; TCP-class latency.
    Link("10gbe", 1.25e9, 50e-6, "IEEE 802.3 10 Gbit/s Ethernet = 1.25 GB/s; latency typical of TCP"),
)}


def link(name: str) -> Link:
    if name not in LINKS:
        raise InvalidArgument(f"'link' must be one of {sorted(LINKS)}, got {name!r}")
    return LINKS[name]
