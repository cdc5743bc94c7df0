"""Quantization of what travels between modules: online vector quantization (EMA k-means,
product groups, residual stages, data-driven initialisation), scalar baselines, code packing and
entropy coding, link codecs with exact byte accounting, and measurements."""

from dglsim.quant.codec import CODEBOOK_UPDATES, FAMILIES, Codec, Encoded, QuantConfig, codebook_drift, from_vectors, to_vectors
from dglsim.quant.measure import code_usage, distortion, gradient_error, link_measurements
from dglsim.quant.packing import CODE_FORMATS, code_bits, pack_codes, unpack_codes
from dglsim.quant.residual import rvq_decode, rvq_encode, rvq_init, rvq_update, stack_codebooks
from dglsim.quant.scalar import symmetric_decode, symmetric_encode, uniform_decode, uniform_encode
from dglsim.quant.search import CodeIndex, nearest_dense
from dglsim.quant.vq import INITS, VQConfig, VQState, code_dtype, kmeans_plusplus, lloyd_step, vq_assign, vq_decode, vq_init, vq_update

__all__ = [
    "CODEBOOK_UPDATES", "FAMILIES", "Codec", "Encoded", "QuantConfig", "codebook_drift", "from_vectors", "to_vectors",
    "code_usage", "distortion", "gradient_error", "link_measurements",
    "CODE_FORMATS", "code_bits", "pack_codes", "unpack_codes",
    "rvq_decode", "rvq_encode", "rvq_init", "rvq_update", "stack_codebooks",
    "symmetric_decode", "symmetric_encode", "uniform_decode", "uniform_encode", "CodeIndex", "nearest_dense",
    "INITS", "VQConfig", "VQState", "code_dtype", "kmeans_plusplus", "lloyd_step", "vq_assign", "vq_decode", "vq_init", "vq_update",
]
