"""Named simulated devices: peak float32 arithmetic and memory bandwidth from published specs.

dglsim trains in float32, so the peaks are the float32 (non-tensor-core) ones. A device's time
for a workload comes from the roofline (`dglsim.cluster.roofline`), scaled by an efficiency
factor that the study sets or calibrates; the peaks themselves are never tuned.
"""

from __future__ import annotations

from dataclasses import dataclass

from dglsim.errors import InvalidArgument

__all__ = ["Device", "DEVICES", "device"]


@dataclass(frozen=True)
class Device:
    name: str
    peak_flops: float  # float32 FLOP/s
    memory_bandwidth: float  # bytes/s
    source: str  # where the two numbers come from

    def describe(self) -> str:
        return f"{self.name} ({self.peak_flops / 1e12:.3g} TFLOP/s fp32, {self.memory_bandwidth / 1e9:.4g} GB/s)"


DEVICES: dict[str, Device] = {d.name: d for d in (
    # NVIDIA Tesla V100 datasheet (SXM2): 15.7 TFLOPS single precision, HBM2 900 GB/s.
    Device("v100", 15.7e12, 900e9, "NVIDIA Tesla V100 GPU datasheet, SXM2: 15.7 TFLOPS FP32, 900 GB/s HBM2"),
    # NVIDIA A100 Tensor Core GPU datasheet, A100 40GB SXM: 19.5 TFLOPS FP32, 1,555 GB/s HBM2.
    Device("a100", 19.5e12, 1555e9, "NVIDIA A100 Tensor Core GPU datasheet, 40GB SXM: 19.5 TFLOPS FP32, 1,555 GB/s HBM2"),
    # NVIDIA H100 Tensor Core GPU datasheet, H100 SXM: 67 TFLOPS FP32, 3.35 TB/s HBM3.
    Device("h100", 67e12, 3.35e12, "NVIDIA H100 Tensor Core GPU datasheet, SXM: 67 TFLOPS FP32, 3.35 TB/s HBM3"),
    # One core of an Intel Xeon Platinum 8380 (Ice Lake SP, 40 cores, 2.3 GHz base, 8 channels of
    # DDR4-3200; Intel ARK): two AVX-512 FMA units x 16 float32 lanes x 2 FLOPs x 2.3 GHz =
    # 147.2 GFLOP/s; the socket's 8 x 25.6 GB/s = 204.8 GB/s shared by 40 cores = 5.12 GB/s.
    Device("cpu_core", 147.2e9, 5.12e9, "one core of an Intel Xeon Platinum 8380 (Intel ARK: 2.3 GHz, 8 x DDR4-3200 for 40 cores; 2 AVX-512 FMA units): 147.2 GFLOP/s, 5.12 GB/s"),
)}


def device(name: str) -> Device:
    if name not in DEVICES:
        raise InvalidArgument(f"'cluster' device must be one of {sorted(DEVICES)}, got {name!r}")
    return DEVICES[name]
