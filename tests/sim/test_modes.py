import numpy as np
import pytest
from scipy import stats

from dglsim.errors import InvalidArgument
from dglsim.sim import paper_probabilities, simulate, spec_from_dict, summarize_trace, sync_fast
from dglsim.sim.metrics import buffer_peak

from .helpers import finishes

NOISE = 0.2  # the authors' setting: one module's weight reduced by `noise`, slowdown 1 / (1 - noise)
SLOWDOWN = [1.0, 1 / (1 - NOISE), 1.0, 1.0]


def _spec(mode, **extra):
    base = {"mode": mode, "workers": 4, "steps": 3000, "seed": 3,
            "compute": {"kind": "gamma", "mean": 0.01, "cv": 0.4}, "latency": {"kind": "exponential", "mean": 0.002}}
    return spec_from_dict(base | extra)


def test_async_with_exponential_times_is_the_authors_categorical_scheduler():
    """With exponential compute times and buffers that never run dry, the next worker to finish
    is j with probability rate_j / sum(rates) (memorylessness). The observed sequence passes a
    chi-square test at level 0.001 against those probabilities, which equal paper mode's, and
    paper mode's own choices pass the same test."""
    spec = _spec("async", steps=20_000, buffer=5, compute={"kind": "exponential", "mean": 0.01}, slowdown=SLOWDOWN, latency=1e-4)
    rows = simulate(spec).trace.to_array()
    done = rows[rows["action"] == "finish"]
    first_done = min(done[done["worker"] == j]["time"][-1] for j in range(4))  # all workers still busy before this
    sequence = done[(done["time"] > 1.0) & (done["time"] < first_done)]["worker"]
    p = paper_probabilities(spec_from_dict({"mode": "paper", "workers": 4, "steps": 1, "buffer": 1, "compute": 0.01, "slowdown": SLOWDOWN}))
    rates = 1 / np.array(SLOWDOWN)
    np.testing.assert_allclose(p, rates / rates.sum(), rtol=1e-15)
    counts = np.bincount(sequence, minlength=4)
    assert stats.chisquare(counts, p * counts.sum()).pvalue > 1e-3, counts

    paper = simulate(spec_from_dict({"mode": "paper", "workers": 4, "steps": 20_000, "buffer": 5, "compute": 0.01, "slowdown": SLOWDOWN}))
    prow = paper.trace.to_array()
    chosen = prow[(prow["action"] == "finish") & (prow["time"] >= 8)]
    cut = min(chosen[chosen["worker"] == j]["time"][-1] for j in range(4))
    picks = np.bincount(chosen[chosen["time"] < cut]["worker"], minlength=4)
    assert stats.chisquare(picks, p * picks.sum()).pvalue > 1e-3, picks


def test_paper_mode_warms_up_in_the_authors_order():
    rows = simulate(spec_from_dict({"mode": "paper", "workers": 3, "steps": 50, "buffer": 2, "compute": 1.0})).trace.to_array()
    starts = rows[rows["action"] == "start"]
    assert starts["worker"][:6].tolist() == [0, 0, 1, 1, 2, 2] and starts["time"][:6].tolist() == [0, 1, 2, 3, 4, 5]


def test_fast_path_agrees_with_the_engine_to_float_rounding():
    spec = _spec("sync", arrival={"kind": "exponential", "mean": 0.012}, slowdown=[1.0, 1.3, 0.9, 1.1], payload_bytes=[4096, 2048, 1024], bandwidth=1e7)
    engine, fast = simulate(spec), sync_fast(spec)
    for j in range(4):
        f = finishes(engine.trace, j)["time"]
        np.testing.assert_allclose(f, fast.depart[j], rtol=1e-12, atol=1e-12 * fast.makespan)
    assert fast.makespan == pytest.approx(engine.makespan, rel=1e-12)
    with pytest.raises(InvalidArgument, match="sync_fast needs mode 'sync' with unbounded queues"):
        sync_fast(_spec("sync", buffer=2))


def test_sync_processes_every_item_once_in_order_within_the_queue_capacity():
    result = simulate(_spec("sync", buffer=2, slowdown=[1.0, 3.0, 1.0, 1.0]))
    rows = result.trace.to_array()
    result.trace.validate(4)
    for j in range(1, 4):
        consumed = rows[(rows["worker"] == j) & (rows["action"] == "start")]
        produced = rows[(rows["worker"] == j - 1) & (rows["action"] == "send")]
        assert consumed["item"].tolist() == produced["item"].tolist()  # each once, in order
        assert (consumed["reuse"] == 1).all()
        assert rows[(rows["worker"] == j) & (rows["action"] == "arrive")]["occupancy"].max() <= 2
    assert (rows["action"] == "block").sum() > 0 and (rows["action"] == "block").sum() == (rows["action"] == "unblock").sum()


@pytest.mark.parametrize("mode", ["sync", "async", "paper"])
def test_staleness_is_producer_updates_since_production(mode):
    """For every consumed item: staleness = producer's update count at consumption - the version
    the item carries, recomputed independently from the producer's finish rows."""
    result = simulate(_spec(mode, buffer=3, max_reuse=3 if mode != "sync" else None, slowdown=[1.0, 2.0, 1.0, 1.0]))
    rows = result.trace.to_array()
    for j in range(1, 4):
        starts = rows[(rows["worker"] == j) & (rows["action"] == "start")]
        index = np.flatnonzero((rows["worker"] == j) & (rows["action"] == "start"))
        for row, at in zip(starts, index):
            count = int(((rows["worker"][:at] == j - 1) & (rows["action"][:at] == "finish")).sum())
            assert row["staleness"] == count - row["version"] >= 0
        assert (starts["age"] >= 0).all()


def test_async_consumer_never_trains_on_items_it_has_not_received():
    result = simulate(_spec("async", buffer=1, slowdown=[4.0, 1.0, 1.0, 1.0]))
    rows = result.trace.to_array()
    for j in range(1, 4):
        mine = rows[rows["worker"] == j]
        received = set()
        for r in mine:
            if r["action"] == "arrive":
                received.add(int(r["item"]))
            elif r["action"] == "start":
                assert int(r["item"]) in received


def test_same_seed_same_trace_bytes_other_seed_other_trace():
    a, b = simulate(_spec("async", buffer=4)), simulate(_spec("async", buffer=4))
    c = simulate(_spec("async", buffer=4, seed=4))
    assert a.trace.text() == b.trace.text() and a.trace.text() != c.trace.text()


def test_metrics_add_up():
    result = simulate(_spec("async", buffer=4, payload_bytes=[100, 200, 300], slowdown=[1.0, 1.5, 1.0, 1.0]))
    m = summarize_trace(result.trace, 4)
    assert [w["updates"] for w in m["workers"]] == [3000] * 4
    assert [w["bytes_sent"] for w in m["workers"]] == [300_000, 600_000, 900_000, 0]
    for w in m["workers"]:
        assert 0 < w["utilization"] <= 1 and w["idle_fraction"] == pytest.approx(1 - w["utilization"])
        assert w["occupancy_mean"] <= w["occupancy_max"] <= 4
    assert m["workers"][2]["reuse"]["mean"] > 1  # the slow producer starves module 2: it reuses items


def test_paper_mode_finished_modules_keep_forwarding():
    """A module past its budget stops updating but still passes items on, so the modules after
    it keep receiving fresh items (the authors' epoch limit)."""
    spec = spec_from_dict({"mode": "paper", "workers": 3, "steps": 200, "buffer": 4, "compute": 1.0, "slowdown": [1.0, 1.0, 3.0]})
    result = simulate(spec)
    assert result.updates == [200, 200, 200]
    rows = result.trace.to_array()
    forwards = rows[rows["action"] == "forward"]
    assert len(forwards) > 0 and set(forwards["worker"]) <= {0, 1}
    last_update = {j: finishes(result.trace, j)["time"][-1] for j in range(3)}
    assert (forwards["time"] > np.array([last_update[w] for w in forwards["worker"]])).all()  # only after its budget
    late = rows[(rows["worker"] == 2) & (rows["action"] == "start") & (rows["time"] > last_update[1])]
    assert late["age"].max() < 100  # module 2 still consumes recent items after module 1 stopped updating


def test_slow_link_serialises_transfers():
    """Items of 1 MB over 1 MB/s take 1 s each on the link: the link, not compute, sets the pace."""
    spec = spec_from_dict({"mode": "sync", "workers": 2, "steps": 50, "compute": 0.1, "payload_bytes": 1_000_000, "bandwidth": 1e6})
    result = simulate(spec)
    assert result.makespan == pytest.approx(0.1 + 50 * 1.0 + 0.1)


@pytest.mark.parametrize("mode", ["sync", "async", "paper"])
def test_periodic_callback_runs_at_each_interval_while_the_run_goes_on(mode):
    calls = []
    spec = _spec(mode, buffer=3, steps=500)
    interval = 50.0 if mode == "paper" else 0.5
    period = {"every_steps" if mode == "paper" else "every": (interval, calls.append)}  # global steps or seconds
    result = simulate(spec, **period)
    assert calls and calls == [pytest.approx(interval * (i + 1)) for i in range(len(calls))]
    assert calls[-1] <= result.makespan + interval


@pytest.mark.parametrize(("mode", "wrong"), [("paper", "every"), ("sync", "every_steps"), ("async", "every_steps")])
def test_a_period_in_the_other_modes_clock_is_refused(mode, wrong):
    """Seconds and global steps never share a parameter: each mode refuses the other's."""
    with pytest.raises(InvalidArgument, match=f"'{wrong}' of simulate"):
        simulate(_spec(mode, buffer=3, steps=10), **{wrong: (1.0, lambda t: None)})


def test_link_time_uses_each_items_own_size():
    """With size(j, payload), item i of 1 MB x (1 + i % 3) over 1 MB/s takes 1, 2 or 3 s on the link."""
    spec = spec_from_dict({"mode": "sync", "workers": 2, "steps": 30, "compute": 0.1, "payload_bytes": 1, "bandwidth": 1e6})
    produced = iter(range(30))
    result = simulate(spec, compute=lambda j, item: next(produced) % 3 + 1 if j == 0 else None, size=lambda j, units: units * 1_000_000)
    sends = result.trace.to_array()
    sends = sends[sends["action"] == "send"]
    assert sends["bytes"].tolist() == [(i % 3 + 1) * 1_000_000 for i in range(30)]
    # the link is the bottleneck: the last item arrives after all transfers, 60 s of them
    assert result.makespan == pytest.approx(0.1 + sum(i % 3 + 1 for i in range(30)) + 0.1)


@pytest.mark.parametrize("mode,extra", [("sync", {"buffer": 3}), ("async", {"buffer": 4}), ("async", {"buffer": 4, "max_reuse": 2}),
                                        ("paper", {"buffer": 3, "max_reuse": 2})])
def test_buffer_peak_replays_what_the_buffer_held(mode, extra):
    """Counting items, the replayed peak is the largest occupancy the trace reports."""
    spec = _spec(mode, steps=400, slowdown=[1.0, 1.0, 2.0, 1.0], **extra)
    result = simulate(spec)
    rows = result.trace.to_array()
    for j in (1, 2, 3):
        mine = rows[(rows["worker"] == j) & np.isin(rows["action"], ("arrive", "evict", "start", "forward"))]
        peak = buffer_peak(result.trace, j, removes_on_start=mode == "sync", max_reuse=spec.max_reuse, weigh=len)
        assert peak == mine["occupancy"].max()


def test_paper_mode_needs_its_buffer_size():
    from dglsim.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match="'buffer' of PipelineSpec must be an int >= 1 \\(the buffer size M\\) in paper mode, got None"):
        spec_from_dict({"mode": "paper", "workers": 3, "steps": 5, "compute": 0.01})


def test_the_authors_buffer_rule_doubles_staleness_against_least_used_in_their_setting():
    """Their setting: 4 modules picked at equal rates, M = 5. Run as their code runs, the rule
    serves the oldest slot whenever it is among the least used; their code gives about 1.5
    producer updates of staleness per consumed batch where least used-then-freshest gives about
    0.7. Mean over 20 seeds of 234 updates per module (seed-to-seed sd about 0.05 each)."""
    means = {}
    for policy in ("least_used", "authors"):
        runs = [summarize_trace(simulate(spec_from_dict({"mode": "paper", "workers": 4, "steps": 234, "buffer": 5, "policy": policy,
                                                         "compute": 0.01, "seed": s})).trace, 4) for s in range(20)]
        means[policy] = np.mean([[r["workers"][j]["staleness"]["mean"] for j in (1, 2, 3)] for r in runs], axis=0)
    assert (means["least_used"] < 0.8).all() and (means["authors"] > 1.3).all()
    assert (means["authors"] > 1.8 * means["least_used"]).all()
