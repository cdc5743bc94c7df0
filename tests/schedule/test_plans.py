"""Plans as data: every method's plan is valid, the dry run finds deadlocks, makespans meet their
closed forms on constant durations, and memory replays as the methods' papers say."""

import math

import numpy as np
import pytest

from dglsim.delays import gamma
from dglsim.errors import InvalidArgument
from dglsim.schedule import MICRO_BATCHED, PLANS, Action, ActionCosts, DeviceMemory, Plan, PlanError, build_plan, check_plan, describe, peak_memory, run_plan
from dglsim.sim import simulate, spec_from_dict

T = 0.03  # seconds per DGL update of every module: f = T / 3 with no head


def _run(method, k, steps, m=1, **costs):
    plan = build_plan(method, k, steps, 48, m if method in MICRO_BATCHED else 1)  # 48: equal micro-batches for m in 1, 2, 3, 4, 6, 8
    return run_plan(plan, ActionCosts((T,) * k, **costs))


@pytest.mark.parametrize("method", list(PLANS))
def test_every_plan_is_valid_and_runs_every_action_once(method):
    plan = build_plan(method, 4, 5, 64, 4 if method in MICRO_BATCHED else 1)
    latency = 0.004  # longer than a micro-batch's forward: a message counted as arrived too early shows
    result = run_plan(plan, ActionCosts((T,) * 4, latency=latency))
    assert len(result.actions) == plan.actions()
    keys = set(zip(result.actions["device"], result.actions["kind"], result.actions["step"], result.actions["micro"]))
    assert keys == set(plan.index())
    # every action started once the outputs it needs had crossed their links
    times = result.times()
    for a in plan.index().values():
        assert all(times[n][1] + latency <= times[a.key][0] + 1e-12 for n in a.needs)


def test_dry_run_names_the_deadlock():
    """Two devices each waiting for the other's second action: the dry run says who waits for what."""
    a0 = [Action(0, "forward", 0, 0, ((1, "backward", 0, 0),)), Action(0, "backward", 0)]
    a1 = [Action(1, "backward", 0, 0, ((0, "backward", 0, 0),)), Action(1, "forward", 0)]
    with pytest.raises(PlanError, match=r"deadlocks: device 0 at \(0, 'forward', 0, 0\) waits for \[\(1, 'backward', 0, 0\)\]"):
        check_plan(Plan("circular", [a0, a1]))
    with pytest.raises(PlanError, match="needs .* which no device runs"):
        check_plan(Plan("missing", [[Action(0, "local", 0, 0, ((1, "local", 0, 0),))], []]))


def test_describe_prints_each_device():
    text = describe(build_plan("1f1b", 4, 1, 64, 4))
    assert "device 3: F0 B0 F0.1 B0.1 F0.2 B0.2 F0.3 B0.3 U0" in text
    assert "device 0: F0 F0.1 F0.2 F0.3 B0 B0.1 B0.2 B0.3 U0" in text


@pytest.mark.parametrize("k,m", [(2, 1), (4, 4), (4, 8), (6, 3)])
@pytest.mark.parametrize("method", ["gpipe", "1f1b"])
def test_pipeline_makespan_and_bubble_meet_the_closed_form(method, k, m):
    """GPipe and 1F1B on K equal devices: each mini-batch takes (m + K - 1) micro-batch slots of
    forward + backward, so the bubble is (K - 1) / (m + K - 1) (Huang et al. 2019)."""
    steps = 3
    result = _run(method, k, steps, m)
    slot = T / m  # forward f/m plus backward 2f/m, f = T/3
    assert result.makespan == pytest.approx(steps * (m + k - 1) * slot, rel=1e-12)
    assert result.bubble() == pytest.approx(np.full(k, (k - 1) / (m + k - 1)), rel=1e-9)


@pytest.mark.parametrize("method", ["dgl", "ddg", "dni"])
def test_locally_updating_methods_fill_once(method):
    """DGL, DDG and DNI (no synthesizer cost) spend T per step on every device: S steps end after
    (S + K - 1) T (the pipeline fills once, never flushes)."""
    k, steps = 4, 7
    assert _run(method, k, steps).makespan == pytest.approx((steps + k - 1) * T, rel=1e-12)


def test_features_replay_pays_the_recomputation():
    """Each device but the last does a forward and a replay (forward + backward) per step: 4f,
    so every extra step costs 4f = 4T/3 in the steady state."""
    k = 4
    longer, shorter = _run("features_replay", k, 12), _run("features_replay", k, 8)
    assert longer.makespan - shorter.makespan == pytest.approx(4 * (4 * T / 3), rel=1e-9)


def test_greedy_is_the_sum_over_modules():
    """Module p trains alone, S steps of T, once module p-1's last step is done (its frozen
    forward, f, starts module p's first input): K S T + (K - 1) f."""
    k, steps = 4, 5
    assert _run("greedy", k, steps).makespan == pytest.approx(k * steps * T + (k - 1) * T / 3, rel=1e-12)


def test_a_slow_device_paces_a_locked_pipeline():
    """Slowing one device by 2 in GPipe stretches every slot of the pipeline it is in; in DGL
    the pipeline runs at the slow device's rate."""
    k, steps = 4, 20
    slow = (1.0, 2.0, 1.0, 1.0)
    dgl = _run("dgl", k, steps, slowdown=slow)
    assert dgl.makespan == pytest.approx(steps * 2 * T + (k - 1) * T, rel=1e-9)


def test_dgl_plan_times_equal_the_pipeline_simulator():
    """The DGL plan on the plan executor and sync DGL on dglsim.sim (unbounded queues) start and
    finish every update at the same instants, with a slowed module, link latency and bandwidth."""
    k, steps, nbytes = 3, 40, 4096
    spec = spec_from_dict({"mode": "sync", "workers": k, "steps": steps, "compute": [0.01, 0.02, 0.015], "slowdown": [1.0, 1.5, 1.0],
                           "latency": 0.003, "bandwidth": 1e6, "payload_bytes": nbytes})
    ref = simulate(spec, engine="python").trace.to_array()
    plan = build_plan("dgl", k, steps, 1)
    result = run_plan(plan, ActionCosts((0.01, 0.02, 0.015), slowdown=(1.0, 1.5, 1.0), activation_bytes=(nbytes, nbytes), latency=0.003, bandwidth=1e6))
    for j in range(k):
        starts = ref["time"][(ref["action"] == "start") & (ref["worker"] == j)]
        finishes = ref["time"][(ref["action"] == "finish") & (ref["worker"] == j)]
        mine = result.actions[result.actions["device"] == j]
        assert np.array_equal(mine["start"], starts)
        assert np.allclose(mine["finish"], finishes, rtol=1e-15, atol=0)  # start + duration, the same sum


def test_links_carry_gradients_down_with_their_own_bytes():
    """1F1B sends one activation up and one gradient down per micro-batch and boundary."""
    k, steps, m = 3, 2, 4
    plan = build_plan("1f1b", k, steps, 64, m)
    result = run_plan(plan, ActionCosts((T,) * k, activation_bytes=(100, 10), gradient_bytes=(7, 3)))
    per_sample = 64 * steps
    assert result.messages[(0, 1)] == (m * steps, 100 * per_sample)
    assert result.messages[(1, 0)] == (m * steps, 7 * per_sample)
    assert result.messages[(2, 1)] == (m * steps, 3 * per_sample)


def test_a_slow_link_delays_the_gradient_path():
    """With gradients as heavy as activations, a 10x slower bandwidth lengthens GPipe's run."""
    fast = _run("gpipe", 3, 2, 4, activation_bytes=(1000, 1000), gradient_bytes=(1000, 1000), bandwidth=1e9)
    slow = _run("gpipe", 3, 2, 4, activation_bytes=(1000, 1000), gradient_bytes=(1000, 1000), bandwidth=1e6)
    assert slow.makespan > fast.makespan + 4 * 12 * 1000 / 1e6


@pytest.mark.parametrize("m", [2, 4, 8])
def test_memory_stash_counts(m):
    """GPipe stashes all m micro-batches on every device; 1F1B at most min(K - j, m) on device j
    (Narayanan et al. 2021); DDG K - j whole batches; features replay keeps inputs, not stashes."""
    k, steps, batch = 4, 6, 64
    unit = DeviceMemory((0,) * k, {"stash": (1,) * k})
    per_micro = batch // m
    gp = peak_memory(run_plan(build_plan("gpipe", k, steps, batch, m), ActionCosts((T,) * k)), unit)
    ob = peak_memory(run_plan(build_plan("1f1b", k, steps, batch, m), ActionCosts((T,) * k)), unit)
    assert gp == [m * per_micro] * k
    assert ob == [min(k - j, m) * per_micro for j in range(k)]
    ddg = peak_memory(run_plan(build_plan("ddg", k, steps, batch), ActionCosts((T,) * k)), unit)
    assert ddg == [(k - j) * batch for j in range(k)]
    inputs = DeviceMemory((5,) * k, {"input": (1,) * k})
    fr = peak_memory(run_plan(build_plan("features_replay", k, steps, batch), ActionCosts((T,) * k)), inputs)
    assert fr == [5 + (k - j) * batch for j in range(k - 1)] + [5]


def test_jitter_draws_are_common_to_every_method_of_a_seed():
    """Device j's factors come from its own stream of the seed: the first action of every device
    in two methods costs the same multiple of its base time."""
    jitter = gamma(1.0, 0.5)
    a = run_plan(build_plan("dgl", 3, 4, 8), ActionCosts((T,) * 3, jitter=jitter), seed=5)
    b = run_plan(build_plan("ddg", 3, 4, 8), ActionCosts((T,) * 3, jitter=jitter), seed=5)
    for j in range(3):
        da = a.actions[a.actions["device"] == j][0]
        db = b.actions[b.actions["device"] == j][0]
        assert (da["finish"] - da["start"]) / T == pytest.approx((db["finish"] - db["start"]) / (T / 3), rel=1e-12)
    c = run_plan(build_plan("dgl", 3, 4, 8), ActionCosts((T,) * 3, jitter=jitter), seed=6)
    assert not np.array_equal(a.actions["finish"], c.actions["finish"])


@pytest.mark.parametrize("bad,match", [
    (dict(method="pipedream"), "'method' of build_plan must be one of"),
    (dict(micro_batches=0), "'micro_batches' of build_plan must be an int >= 1, got 0"),
    (dict(method="ddg", micro_batches=2), "'micro_batches' of build_plan must be 1 for 'ddg'"),
    (dict(micro_batches=65), "'micro_batches' of build_plan must be at most the batch size 64"),
    (dict(k=0), "'k' of build_plan must be an int >= 1, got 0"),
])
def test_bad_plan_arguments_are_named(bad, match):
    args = dict(method="gpipe", k=3, steps=2, batch=64, micro_batches=4) | bad
    with pytest.raises(InvalidArgument, match=match):
        build_plan(**args)


@pytest.mark.parametrize("bad,match", [
    (dict(step_seconds=(0.0, T)), "'step_seconds' of ActionCosts must be one finite real > 0 per module"),
    (dict(slowdown=(1.0,)), "'slowdown' of ActionCosts must be 2 finite reals >= 0"),
    (dict(jitter=2.0), "'jitter' of ActionCosts must be a delay model"),
    (dict(activation_bytes=(1, 2)), "'activation_bytes' of ActionCosts must be empty or 1 ints >= 0"),
    (dict(bandwidth=0.0), "'latency' and 'bandwidth' of ActionCosts must be >= 0 and > 0"),
])
def test_bad_costs_are_named(bad, match):
    with pytest.raises(InvalidArgument, match=match):
        ActionCosts(**({"step_seconds": (T, T)} | bad))


def test_head_and_synthesizer_shares_set_the_durations():
    """f = T / (3 (1 + h)); the last device's forward includes its head; a DNI step costs 3f + s."""
    costs = ActionCosts((0.03, 0.03), head_share=(0.5, 0.5), synth_share=(0.25, 0.0))
    f = 0.03 / (3 * 1.5)
    assert costs.base_seconds(Action(0, "forward", 0), 1.0) == pytest.approx(f)
    assert costs.base_seconds(Action(1, "forward", 0), 1.0) == pytest.approx(f * 1.5)
    assert costs.base_seconds(Action(0, "dni_step", 0), 1.0) == pytest.approx(3 * f + 0.25 * f)
    assert costs.base_seconds(Action(0, "synth_update", 0), 1.0) == pytest.approx(3 * 0.25 * f)
    assert costs.base_seconds(Action(0, "local", 0), 0.5) == pytest.approx(0.015)
    assert math.isclose(costs.base_seconds(Action(0, "update", 0), 1.0), 0.0)


@pytest.mark.parametrize("method", ["1f1b", "dni"])
def test_a_plan_wired_once_runs_as_a_fresh_one_under_other_costs_and_seeds(method):
    """The wiring (dependencies as numbers) is worked out once per plan and shared by its runs: a
    reused plan gives, run for run, the same actions, times and messages as a freshly built one."""
    plan = build_plan(method, 3, 6, 48, 4 if method in MICRO_BATCHED else 1)
    wiring = plan.wiring
    for seed, costs in ((0, ActionCosts((T,) * 3, jitter=gamma(1.0, cv=0.3))),
                        (5, ActionCosts((T, 2 * T, T), activation_bytes=(100, 100), gradient_bytes=(100, 100), latency=1e-3, bandwidth=1e4))):
        reused = run_plan(plan, costs, seed=seed)
        fresh = run_plan(build_plan(method, 3, 6, 48, 4 if method in MICRO_BATCHED else 1), costs, seed=seed)
        assert np.array_equal(reused.actions, fresh.actions) and reused.messages == fresh.messages
    assert plan.wiring is wiring


@pytest.mark.parametrize("capacity", [1, 2, 5])
def test_dgl_plan_with_capacity_is_sync_dgl_with_bounded_queues(capacity):
    """With back-pressure (capacity M), the DGL plan's updates start at the instants of sync DGL
    with queues of M on dglsim.sim, when a slow consumer makes producers block; the control: the
    same plan without capacity starts later updates earlier than the bounded pipeline does."""
    k, steps, nbytes = 3, 40, 4096
    compute, slowdown = [0.01, 0.01, 0.01], [1.0, 1.0, 3.0]
    spec = spec_from_dict({"mode": "sync", "workers": k, "steps": steps, "compute": compute, "slowdown": slowdown, "buffer": capacity,
                           "latency": 0.002, "bandwidth": 1e6, "payload_bytes": nbytes})
    ref = simulate(spec, engine="python").trace.to_array()
    assert (ref["action"] == "block").any()  # the queues fill: the bound matters
    costs = ActionCosts(tuple(compute), slowdown=tuple(slowdown), activation_bytes=(nbytes, nbytes), latency=0.002, bandwidth=1e6)
    plan = build_plan("dgl", k, steps, 1)
    bounded, unbounded = run_plan(plan, costs, capacity=capacity), run_plan(plan, costs)
    for j in range(k):
        starts = ref["time"][(ref["action"] == "start") & (ref["worker"] == j)]
        assert np.array_equal(bounded.actions["start"][bounded.actions["device"] == j], starts)
    first = unbounded.actions[unbounded.actions["device"] == 0]["start"]
    assert not np.array_equal(first, ref["time"][(ref["action"] == "start") & (ref["worker"] == 0)])
    assert bounded.makespan == pytest.approx(unbounded.makespan, rel=1e-12)  # the slow device paces both


def test_capacity_is_checked():
    with pytest.raises(InvalidArgument, match=r"'capacity' of run_plan must be None \(unbounded\) or an int >= 1"):
        run_plan(build_plan("dgl", 2, 3, 1), ActionCosts((T, T)), capacity=0)


@pytest.mark.parametrize("method", list(PLANS))
def test_every_plan_runs_under_the_tightest_capacity(method):
    """Back-pressure of one activation per link never stalls a method's plan (the dry run does
    not see capacity, so this is checked by running); it can only delay it."""
    plan = build_plan(method, 4, 6, 8, 4 if method in MICRO_BATCHED else 1)
    costs = ActionCosts((T,) * 4, latency=1e-3)
    tight, free = run_plan(plan, costs, capacity=1), run_plan(plan, costs)
    assert len(tight.actions) == plan.actions() and tight.makespan >= free.makespan - 1e-12
