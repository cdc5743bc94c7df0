"""A run's expected length, which spreads its evaluations, counts what sets the run's pace:
its modules' compute, or its links' transfers of the items its codecs actually send."""

import pytest

from dglsim.models import build_network
from dglsim.recipe.cluster import expected_length, pipeline_spec
from dglsim.recipe.codecs import expected_link_bytes, link_codecs
from dglsim.recipe.config import RunConfig
from dglsim.train.simulated import batch_payload_bytes

BASE = dict(method="simulated", arch="learning_curve_cnn", k=4, width=8, head="linear", batch_size=16, compute_time=0.01, latency=1e-3, bandwidth=1e6)


def _length(cfg: RunConfig) -> float:
    net = build_network(cfg.network_spec(), seed=0)
    spec = pipeline_spec(cfg, [0.01] * cfg.k, batch_payload_bytes(net, cfg.batch_size), 100)
    return expected_length(spec, expected_link_bytes(cfg, net, cfg.batch_size))


def test_a_link_bound_run_is_as_long_as_its_slowest_transfer():
    cfg = RunConfig(**BASE)
    net = build_network(cfg.network_spec(), seed=0)
    slowest = max(batch_payload_bytes(net, 16)[:3])  # float32 items and their labels
    assert _length(cfg) == pytest.approx(100 * (1e-3 + slowest / 1e6))
    # negative control: without the links, the same spec looks compute-bound and 10x shorter
    spec = pipeline_spec(cfg, [0.01] * 4, batch_payload_bytes(net, 16), 100)
    assert expected_length(spec) == pytest.approx(100 * 0.01) and _length(cfg) > 10 * expected_length(spec)


@pytest.mark.parametrize("settings", [dict(quant="uniform"), dict(quant="vq", codes=16), dict(quant="vq", codes=16, stages=2, code_format="packed")])
def test_expected_item_bytes_are_what_the_codecs_send(settings):
    """Exact for every format but zstd: the same bytes a link's codec produces for a batch."""
    import torch

    cfg = RunConfig(**BASE, **settings)
    net = build_network(cfg.network_spec(), seed=0)
    x = torch.randn(16, *net.input_shape)
    sent = []
    for j, codec in enumerate(link_codecs(cfg)):
        with torch.no_grad():
            x = net.stages[j](x)
        sent.append(codec.encode(x).payload_bytes + 16 * 8)
    assert expected_link_bytes(cfg, net, 16) == sent
