"""Quantization of what travels between modules: online vector quantization (EMA k-means,
product groups), scalar baselines, link codecs with exact byte accounting, and measurements."""

from dglsim.quant.codec import FAMILIES, Codec, Encoded, QuantConfig, from_vectors, to_vectors
from dglsim.quant.measure import code_usage, distortion, gradient_error, link_measurements
from dglsim.quant.scalar import uniform_decode, uniform_encode
from dglsim.quant.search import CodeIndex, nearest_dense
from dglsim.quant.vq import VQConfig, VQState, code_dtype, vq_assign, vq_decode, vq_init, vq_update

__all__ = [
    "FAMILIES", "Codec", "Encoded", "QuantConfig", "from_vectors", "to_vectors",
    "code_usage", "distortion", "gradient_error", "link_measurements",
    "uniform_decode", "uniform_encode", "CodeIndex", "nearest_dense",
    "VQConfig", "VQState", "code_dtype", "vq_assign", "vq_decode", "vq_init", "vq_update",
]
