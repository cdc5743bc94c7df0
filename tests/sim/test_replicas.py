"""Data-parallel modules: the all-reduce's alpha-beta times, an update as the slowest of its
replicas, one replica as the single pipeline, links carrying each replica's share, and the
training step whose shards average to the whole batch's gradient."""

import math

import numpy as np
import pytest
from scipy import integrate

from dglsim.errors import InvalidArgument
from dglsim.sim import simulate, spec_from_dict
from dglsim.sim.collectives import AllReduce
from dglsim.sim.streams import worker_streams

ALPHA, BANDWIDTH, NBYTES = 5e-6, 12.5e9, 100e6


@pytest.mark.parametrize(("n", "ring", "tree"), [
    (1, 0.0, 0.0),
    # ring: 2 (N-1) alpha + 2 (N-1)/N n beta; tree: 2 ceil(log2 N) (alpha + n beta) (Thakur et al. 2005)
    (2, 2 * ALPHA + NBYTES / BANDWIDTH, 2 * (ALPHA + NBYTES / BANDWIDTH)),
    (4, 6 * ALPHA + 1.5 * NBYTES / BANDWIDTH, 4 * (ALPHA + NBYTES / BANDWIDTH)),
    (5, 8 * ALPHA + 1.6 * NBYTES / BANDWIDTH, 6 * (ALPHA + NBYTES / BANDWIDTH)),
])
def test_allreduce_times_follow_the_alpha_beta_model(n, ring, tree):
    assert AllReduce("ring", BANDWIDTH, ALPHA).seconds(n, NBYTES) == pytest.approx(ring, rel=1e-12)
    assert AllReduce("tree", BANDWIDTH, ALPHA).seconds(n, NBYTES) == pytest.approx(tree, rel=1e-12)


def test_ring_wins_on_big_gradients_and_tree_on_many_small_ones():
    ring, tree = AllReduce("ring", BANDWIDTH, ALPHA), AllReduce("tree", BANDWIDTH, ALPHA)
    assert ring.seconds(256, 100e6) < tree.seconds(256, 100e6)  # bandwidth term: 2 n beta against 16 n beta
    assert tree.seconds(256, 1e3) < ring.seconds(256, 1e3)  # latency term: 16 alpha against 510 alpha


def _spec(**extra):
    doc = {"mode": "async", "workers": 3, "steps": 4000, "buffer": 3, "seed": 3, "compute": {"kind": "lognormal", "mean": 0.01, "cv": 0.5},
           "latency": 1e-4, "payload_bytes": 100_000, "bandwidth": 1e9}
    return spec_from_dict(doc | extra)


def test_one_replica_everywhere_is_the_single_pipeline():
    plain, one = simulate(_spec()), simulate(_spec(replicas=1, replica_slowdown=1.0))
    assert one.trace == plain.trace


def test_an_update_takes_the_slowest_replica_then_the_allreduce():
    spec = _spec(replicas=[1, 4, 2], replica_slowdown=[1.0, [1.0, 1.0, 3.0, 1.0], 1.0], gradient_bytes=[0, 10**6, 10**7],
                 allreduce={"algorithm": "ring", "bandwidth": BANDWIDTH, "latency": ALPHA})
    got = worker_streams(spec).compute[1].take(3000)
    # the documented streams: replica 0 is the module's own, replica r >= 1 keyed (3K + 2, j, r)
    first = np.random.default_rng(np.random.SeedSequence(spec.seed).spawn(3 * 3 + 2)[1])
    replicas = [spec.replica_model(1, 0).stream(first).take(3000)]
    for r in range(1, 4):
        rng = np.random.default_rng(np.random.SeedSequence(spec.seed, spawn_key=(11, 1, r)))
        replicas.append(spec.replica_model(1, r).stream(rng).take(3000))
    assert np.array_equal(got, np.max(replicas, axis=0) + spec.allreduce_seconds(1))
    assert spec.allreduce_seconds(1) == pytest.approx(6 * ALPHA + 1.5 * 1e6 / BANDWIDTH)
    # the 3x slower replica is the straggler with probability int f_3X(x) F_X(x)^3 dx, within 4 MC standard errors
    model = spec.compute_model(1).frozen
    p = integrate.quad(lambda x: model.pdf(x / 3) / 3 * model.cdf(x) ** 3, 0, np.inf, limit=200)[0]
    share = np.mean(np.argmax(replicas, axis=0) == 2)
    assert abs(share - p) < 4 * math.sqrt(p * (1 - p) / 3000)


@pytest.mark.parametrize("n", [4, 16, 64])
def test_the_straggler_penalty_is_the_expected_maximum_of_n_replicas(n):
    """Mean update time = E[max of N iid lognormals] = int_0^inf 1 - F(x)^N dx (order statistics),
    within 4 Monte-Carlo standard errors; the negative control is the single replica's mean."""
    spec = _spec(replicas=[n, n, n])
    model = spec.compute_model(0).frozen
    expected = integrate.quad(lambda x: 1 - model.cdf(x) ** n, 0, np.inf, limit=200)[0]
    times = worker_streams(spec).compute[0].take(4000)
    se = times.std(ddof=1) / math.sqrt(times.size)
    assert abs(times.mean() - expected) < 4 * se
    assert abs(times.mean() - model.mean()) > 20 * se  # one replica's mean is far outside: the check can fail


def test_links_carry_each_replicas_share():
    """A transfer of B bytes between modules of N and M replicas takes B / (min(N, M) bandwidth)."""
    spec = spec_from_dict({"mode": "sync", "workers": 3, "steps": 50, "compute": 1.0, "payload_bytes": [10**6, 10**6], "bandwidth": 1e6,
                           "replicas": [8, 4, 1]})
    rows = simulate(spec).trace.to_array()
    for j, lanes in ((0, 4), (1, 1)):
        sends = rows[(rows["worker"] == j) & (rows["action"] == "send")]["time"]
        arrives = rows[(rows["worker"] == j + 1) & (rows["action"] == "arrive")]["time"]
        assert np.allclose(arrives - sends, 1.0 / lanes)  # compute 1 s per item: no transfer queues behind another


def test_bad_replica_settings_are_named():
    with pytest.raises(InvalidArgument, match="'replicas' of PipelineSpec must be 3 values, each an int >= 1, got \\(2, 0, 1\\)"):
        _spec(replicas=[2, 0, 1])
    with pytest.raises(InvalidArgument, match="'replica_slowdown' of PipelineSpec must be 3 tuples, tuple j of N_j"):
        _spec(replicas=[2, 2, 2], replica_slowdown=[1.0, [1.0], 1.0])
    with pytest.raises(InvalidArgument, match="'gradient_bytes' and 'allreduce' of PipelineSpec go together"):
        _spec(replicas=[2, 2, 2], gradient_bytes=1000)
    with pytest.raises(InvalidArgument, match="'algorithm' of AllReduce must be one of \\['ring', 'tree'\\], got 'star'"):
        _spec(replicas=2, gradient_bytes=10, allreduce={"algorithm": "star"})


def test_replica_shards_average_to_the_whole_batch_gradient():
    """local_step on N disjoint shards = one step on the batch (no batch norm); with batch norm in
    training mode the shards' own statistics make it differ (the negative control)."""
    torch = pytest.importorskip("torch")
    from dglsim.train.steps import local_step

    def run(replicas, norm):
        torch.manual_seed(0)
        stage = torch.nn.Sequential(torch.nn.Linear(6, 8), *( [torch.nn.BatchNorm1d(8)] if norm else []), torch.nn.ReLU())
        head = torch.nn.Linear(8, 3)
        opt = torch.optim.SGD([*stage.parameters(), *head.parameters()], lr=0.5, momentum=0.9)
        gen = torch.Generator().manual_seed(1)
        for _ in range(5):
            x, y = torch.randn(30, 6, generator=gen), torch.randint(0, 3, (30,), generator=gen)
            out, loss = local_step(stage, head, opt, x, y, replicas)
        return torch.cat([p.detach().flatten() for p in [*stage.parameters(), *head.parameters()]]), out, loss

    whole, out1, loss1 = run(1, norm=False)
    for n in (2, 4, 7):  # 7 does not divide 30: shards of 5 and 4, weighted by size
        sharded, out_n, loss_n = run(n, norm=False)
        assert torch.allclose(sharded, whole, rtol=0, atol=1e-5)  # float32 sums in another order
        assert torch.allclose(out_n, out1, atol=1e-5) and torch.allclose(loss_n, loss1, atol=1e-6)
    normed, _, _ = run(1, norm=True)
    assert not torch.allclose(run(4, norm=True)[0], normed, atol=1e-3)
    with pytest.raises(InvalidArgument, match="'replicas' of local_step must be an int in \\[1, batch size 30\\]"):
        local_step(torch.nn.Linear(6, 3), torch.nn.Identity(), torch.optim.SGD(torch.nn.Linear(6, 3).parameters(), lr=0.1),
                   torch.randn(30, 6), torch.randint(0, 3, (30,)), 31)
