"""The plan executor: any `Plan` on the event engine (`dglsim.engine`), in simulated time.

A device runs its actions in plan order, one at a time; an action starts when its device is
free and every message it needs has arrived. When an action finishes, its output goes to each
action on another device that needs it, over the directed link between the two devices: one
message at a time at the link's bandwidth (FIFO), then the link's latency, delivered in order,
as in `dglsim.sim.pipeline`. Links are full duplex: activations (up) and gradients (down) do
not queue behind each other.

Durations (`ActionCosts`) derive from the declared cluster's seconds per DGL update T_j of
module j, the unit every study declares: a stage's forward costs f_j, its backward 2 f_j (the
input and weight gradients), and DGL's local step, forward + auxiliary head + local backward,
is T_j = 3 f_j (1 + h_j), h_j the head's share of the stage's multiply-accumulates. So
f_j = T_j / (3 (1 + h_j)). The last module's forward and backward include its head (the
classifier). A micro-batch of b samples out of B costs b/B of its action (kernels scale with the
samples; per-kernel overheads are not modelled). A DNI synthesizer's forward costs s_j = r_j f_j
(r_j: its multiply-accumulates over the stage's), its update 3 s_j. An update costs nothing
beside the backward it follows. Every duration is then multiplied by the device's slowdown and
by a factor drawn from the device's own stream (the run's jitter family around a base of 1, as
`dglsim.recipe.cluster.compute_model` makes it around a module's base time), one draw per action
in the device's order.

`capacity`, when given, bounds each link's activations as synchronous DGL's queues are bounded
(`dglsim.sim.pipeline`, sync mode): a link holds at most `capacity` activations sent and not yet
taken by a started action, counting those in transit; a device whose output would exceed it
holds the output and starts nothing until its receiver takes one (back-pressure). Gradients
are not bounded. The DGL plan with capacity M is sync DGL with queues of M.

`durations`, when given, is one stream per device (each call, the seconds of that device's next
action), in place of the cost model: how a pipeline spec's own compute models drive a plan.
`trace=True` (the DGL plan only) also writes the pipeline simulator's trace rows (start,
finish, block, unblock, send, arrive with items, versions, staleness, ages and queue lengths,
`dglsim.sim.rows`) in event order: sync DGL run as a plan gives the same trace, byte for byte
(`dglsim.sim.as_plan`).

`work(action)`, when given, runs at the start of each action: training does the action's real
computation there (dglsim.train.scheduled), in an order the plan's dependencies make valid
(every action an action needs has finished, hence started, before it). `every = (seconds,
callback)` calls callback(now) at each multiple of `seconds` while the run goes on.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from dglsim.delays import Constant, DelayModel
from dglsim.engine import Environment
from dglsim.errors import InvalidArgument
from dglsim.schedule.plan import Action, Key, Plan

__all__ = ["ActionCosts", "PlanResult", "run_plan"]


# each kind's seconds in forwards f and synthesizer forwards s (DGL's local step is T itself)
_F = {"forward": 1, "forward_only": 1, "backward": 2, "update": 0, "replay": 3, "local": 0, "dni_step": 3, "synth_update": 0}
_S = {"forward": 0, "forward_only": 0, "backward": 0, "update": 0, "replay": 0, "local": 0, "dni_step": 1, "synth_update": 3}


@dataclass(frozen=True)
class ActionCosts:
    """What each action of each device costs, and what each message weighs."""

    step_seconds: tuple[float, ...]  # T_j: seconds of a DGL update of module j (the declared cluster)
    head_share: tuple[float, ...] | None = None  # h_j (0 when None)
    synth_share: tuple[float, ...] | None = None  # r_j for DNI synthesizers (0 when None)
    slowdown: tuple[float, ...] | None = None  # per device factor (1 when None)
    jitter: DelayModel = Constant(1.0)  # per action factor: the run's jitter family around 1
    activation_bytes: tuple[int, ...] = ()  # per sample, what module j sends up (output and label), K-1 of them
    gradient_bytes: tuple[int, ...] = ()  # per sample, the gradient of module j's output sent down, K-1 of them
    latency: float = 0.0  # seconds per message on every link
    bandwidth: float = math.inf  # bytes/s of every link, each direction

    def __post_init__(self) -> None:
        k = len(self.step_seconds)
        if k < 1 or not all(isinstance(t, (int, float)) and 0 < t < math.inf for t in self.step_seconds):
            raise InvalidArgument(f"'step_seconds' of ActionCosts must be one finite real > 0 per module, got {self.step_seconds!r}")
        for name in ("head_share", "synth_share", "slowdown"):
            values = getattr(self, name)
            if values is not None and (len(values) != k or not all(isinstance(v, (int, float)) and 0 <= v < math.inf for v in values)):
                raise InvalidArgument(f"{name!r} of ActionCosts must be {k} finite reals >= 0, got {values!r}")
        if self.slowdown is not None and min(self.slowdown) <= 0:
            raise InvalidArgument(f"'slowdown' of ActionCosts must be {k} reals > 0, got {self.slowdown!r}")
        for name in ("activation_bytes", "gradient_bytes"):
            values = getattr(self, name)
            if values and (len(values) != k - 1 or not all(isinstance(b, int) and b >= 0 for b in values)):
                raise InvalidArgument(f"{name!r} of ActionCosts must be empty or {k - 1} ints >= 0 (one per link), got {values!r}")
        if not self.latency >= 0 or not self.bandwidth > 0:
            raise InvalidArgument(f"'latency' and 'bandwidth' of ActionCosts must be >= 0 and > 0, got {self.latency!r} and {self.bandwidth!r}")
        if not isinstance(self.jitter, DelayModel):
            raise InvalidArgument(f"'jitter' of ActionCosts must be a delay model (a factor on each duration), got {self.jitter!r}")

    @property
    def k(self) -> int:
        return len(self.step_seconds)

    def forward_seconds(self, j: int) -> float:
        """f_j: the stage's forward on a whole mini-batch (see the module docstring)."""
        h = self.head_share[j] if self.head_share else 0.0
        return self.step_seconds[j] / (3.0 * (1.0 + h))

    def base_seconds(self, a: Action, fraction: float) -> float:
        """Seconds of action `a` on `fraction` of a mini-batch, before slowdown and jitter."""
        j = a.device
        f = self.forward_seconds(j) * fraction
        if j == self.k - 1 and a.kind in ("forward", "backward", "dni_step", "replay"):
            f *= 1.0 + (self.head_share[j] if self.head_share else 0.0)  # the classifier is part of the last stage
        s = f * (self.synth_share[j] if self.synth_share else 0.0)
        return f * _F[a.kind] + s * _S[a.kind] + self.step_seconds[j] * fraction * (a.kind == "local")

    def message_bytes(self, sender: int, receiver: int, samples: int) -> int:
        if receiver > sender:
            return self.activation_bytes[sender] * samples if self.activation_bytes else 0
        return self.gradient_bytes[receiver] * samples if self.gradient_bytes else 0


@dataclass
class PlanResult:
    plan: Plan
    actions: np.ndarray  # structured: device, kind, step, micro, start, finish; in start order
    makespan: float
    messages: dict[tuple[int, int], tuple[int, int]]  # (from, to) -> (messages, bytes)
    events: int
    trace_rows: list[tuple] = field(default_factory=list)  # trace=True: the pipeline's rows (dglsim.sim.rows), in event order

    def busy(self) -> np.ndarray:
        """Seconds each device spent running actions."""
        out = np.zeros(self.plan.k)
        np.add.at(out, self.actions["device"], self.actions["finish"] - self.actions["start"])
        return out

    def bubble(self) -> np.ndarray:
        """Each device's idle fraction of the makespan (the pipeline bubble)."""
        return 1.0 - self.busy() / self.makespan if self.makespan > 0 else np.zeros(self.plan.k)

    def times(self) -> dict[Key, tuple[float, float]]:
        return {(int(r["device"]), str(r["kind"]), int(r["step"]), int(r["micro"])): (float(r["start"]), float(r["finish"])) for r in self.actions}


ACTION_DTYPE = np.dtype([("device", "i4"), ("kind", "U12"), ("step", "i8"), ("micro", "i4"), ("start", "f8"), ("finish", "f8")])


class _Executor:
    def __init__(self, plan: Plan, costs: ActionCosts, seed: int, work, every, capacity: int | None, durations, trace: bool) -> None:
        if costs.k != plan.k:
            raise InvalidArgument(f"'costs' of run_plan must describe the plan's {plan.k} devices, got {costs.k}")
        if durations is not None and len(durations) != plan.k:
            raise InvalidArgument(f"'durations' of run_plan must hold one stream per device ({plan.k}), got {len(durations)}")
        if trace and not _is_dgl_plan(plan):
            raise InvalidArgument(f"'trace' of run_plan needs a plan of local steps, each taking its predecessor's output of the same step "
                                  f"(the DGL plan: the pipeline's rows speak of items), got plan {plan.method!r}")
        self.plan, self.costs, self.work, self.every, self.capacity = plan, costs, work, every, capacity
        self.env = Environment()
        k = plan.k
        # one stream of factors per device, spawned from the seed as the pipeline's compute streams
        # are (dglsim.sim.streams), so device j's draws are common to every method of a seed
        seeds = np.random.SeedSequence(seed).spawn(k)
        self.factor = [costs.jitter.stream(np.random.default_rng(s)) for s in seeds]
        self.durations = durations
        slow = costs.slowdown or (1.0,) * k
        self.pc = [0] * k
        self.busy = [False] * k
        wiring = plan.wiring  # the plan's dependencies as numbers, worked out once per plan
        self.offset, self.needs = wiring.offset, wiring.needs
        receivers = wiring.receivers
        self.arrived = bytearray(2 * plan.actions())  # arrived[m]: message m is at the device that needs it
        fraction = self._fractions()
        self.links = wiring.links
        link_id = {link: n for n, link in enumerate(self.links)}
        # per device and plan position, computed once (and each distinct value once): the action's
        # seconds before jitter, and the messages its finish sends as (receiver, bytes, link, message)
        self.seconds, self.sends = [], []
        for j, device in enumerate(plan.devices):
            seconds: dict[tuple[str, float] | str, float] = {}  # a cost depends on the device
            sizes: dict[tuple[int, float], int] = {}
            device_seconds, device_sends = [], []
            for n, a in enumerate(device, start=self.offset[j]):
                # without micro-batches every action is on the whole mini-batch: its kind is its cost
                share = fraction.get((a.step, a.micro), 1.0) if fraction else 1.0
                cost = (a.kind, share if a.kind in ("forward", "backward") else 1.0) if fraction else a.kind
                duration = seconds.get(cost)
                if duration is None:
                    duration = seconds[cost] = costs.base_seconds(a, cost[1] if fraction else 1.0) * slow[j]
                device_seconds.append(duration)
                tos = receivers.get(n)
                if tos is None:
                    device_sends.append(())
                    continue
                sends = []
                for to in tos:
                    size = sizes.get((to, share))
                    if size is None:
                        size = sizes[(to, share)] = costs.message_bytes(j, to, round(share * plan.batch))
                    sends.append((to, size, link_id[(j, to)], 2 * n + (to > j)))
                device_sends.append(tuple(sends))
            self.seconds.append(device_seconds)
            self.sends.append(device_sends)
        self.link_busy = [0.0] * len(self.links)  # when each link finishes its queued transfers
        self.last_arrival = [0.0] * len(self.links)  # when the last message on each link arrives
        # back-pressure (capacity): activations sent on each link and not yet taken by an action
        # that started, each device's output held while the link into its receiver is full, and
        # per action the (producer, link) of each activation it takes
        self.occupied = [0] * len(self.links)
        self.held: list[tuple | None] = [None] * k
        self.takes: list[list[tuple[tuple[int, int], ...]]] = []
        if capacity is not None:
            device_of = [j for j in range(k) for _ in plan.devices[j]]
            self.takes = [[tuple((device_of[m // 2], link_id[(device_of[m // 2], j)]) for m in waits if m % 2) for waits in self.needs[j]] for j in range(k)]
        # the pipeline's trace rows (dglsim.sim.rows), for the DGL plan: the items each device
        # holds (id, version, birth), in arrival order, the item each device works on, each
        # message's item, and the items made so far
        self.trace = trace
        self.rows: list[tuple] = []
        self.queues: list[deque] = [deque() for _ in range(k)]
        self.working: list[int] = [0] * k
        self.carried: dict[int, tuple[int, int, float]] = {}
        self.version = [0] * k
        self.next_item = 0
        self.start = [0.0] * plan.actions()
        self.finish = [0.0] * plan.actions()
        self.order: list[int] = []  # action numbers in start order

    def _fractions(self) -> dict[tuple[int, int], float]:
        """(step, micro) -> fraction of the mini-batch, from the plan's forward stashes."""
        out = {}
        for h in self.plan.holds:
            if h.what == "stash" and h.start[1] == "forward":
                out[(h.start[2], h.start[3])] = h.samples / self.plan.batch
        return out

    def _try_start(self, j: int) -> None:
        i = self.pc[j]
        if self.busy[j] or i == len(self.seconds[j]) or self.held[j] is not None:
            return
        arrived = self.arrived
        for need in self.needs[j][i]:
            if not arrived[need]:
                return
        now = self.env.now
        self.busy[j] = True
        if self.trace:
            self._record_start(j, now)
        if self.work is not None:
            self.work(self.plan.devices[j][i])
        n = self.offset[j] + i
        finish = now + (self.durations[j]() if self.durations is not None else self.seconds[j][i] * self.factor[j]())
        self.start[n] = now
        self.finish[n] = finish
        self.order.append(n)
        self.env.schedule_at(finish, self._finish, j)
        if self.capacity is not None:
            # taking an activation frees its slot: a producer that held its output sends it now
            for producer, link in self.takes[j][i]:
                self.occupied[link] -= 1
                sends = self.held[producer]
                if sends is not None:
                    self.held[producer] = None
                    if self.trace:
                        item = self.carried[sends[0][3]]
                        self.rows.append((self.env.now, producer, "unblock", item[0], item[1], 0, 0.0, 0, len(self.queues[producer + 1]), 0))
                    self._send(producer, sends)
                    self._try_start(producer)

    def _finish(self, j: int) -> None:
        self.busy[j] = False
        i = self.pc[j]
        self.pc[j] = i + 1
        sends = self.sends[j][i]
        if self.trace:
            self._record_finish(j, sends)
        capacity = self.capacity
        if capacity is not None:
            for to, _, link, message in sends:
                if to > j and self.occupied[link] >= capacity:
                    self.held[j] = sends  # blocked until the receiver takes an activation
                    if self.trace:
                        item = self.carried[message]
                        self.rows.append((self.env.now, j, "block", item[0], item[1], 0, 0.0, 0, len(self.queues[j + 1]), 0))
                    return
        self._send(j, sends)
        self._try_start(j)

    def _send(self, j: int, sends: tuple) -> None:
        env, bandwidth, latency = self.env, self.costs.bandwidth, self.costs.latency
        for to, size, link, message in sends:
            if to > j and self.capacity is not None:
                self.occupied[link] += 1
            if self.trace:
                item = self.carried[message]
                self.rows.append((env.now, j, "send", item[0], item[1], 0, 0.0, 0, 0, size))
            # one message at a time at the link's bandwidth (FIFO), then its latency; in order
            sent = max(env.now, self.link_busy[link]) + size / bandwidth
            self.link_busy[link] = sent
            arrival = max(self.last_arrival[link], sent + latency)
            self.last_arrival[link] = arrival
            env.schedule_at(arrival, self._arrive, to, message)

    def _arrive(self, j: int, message: int) -> None:
        self.arrived[message] = 1
        if self.trace:
            item = self.carried.pop(message)
            self.queues[j].append(item)
            self.rows.append((self.env.now, j, "arrive", item[0], item[1], 0, 0.0, 0, len(self.queues[j]), 0))
        self._try_start(j)

    # --- the pipeline's trace rows (trace=True, the DGL plan) ------------------------------
    def _record_start(self, j: int, now: float) -> None:
        """Device 0 takes fresh data (a new item); device j > 0 its oldest arrived item, as sync DGL does."""
        if j == 0:
            self.working[0] = self.next_item
            self.rows.append((now, 0, "start", self.next_item, 0, 0, 0.0, 1, 0, 0))
            self.next_item += 1
            return
        queue = self.queues[j]
        item = queue.popleft()
        self.working[j] = item[0]
        self.rows.append((now, j, "start", item[0], item[1], self.version[j - 1] - item[1], now - item[2], 1, len(queue), 0))

    def _record_finish(self, j: int, sends: tuple) -> None:
        now, version = self.env.now, self.version[j] + 1
        self.version[j] = version
        self.rows.append((now, j, "finish", self.working[j], version, 0, 0.0, 0, len(self.queues[j]), 0))
        for _, _, _, message in sends:
            self.carried[message] = (self.next_item, version, now)
            self.next_item += 1

    def _tick(self, n: int) -> None:
        if self.env.peek() == math.inf:
            return
        interval, callback = self.every
        callback(self.env.now)
        self.env.schedule_at((n + 1) * interval, self._tick, n + 1)

    def _messages(self) -> dict[tuple[int, int], tuple[int, int]]:
        """(sender, receiver) -> (messages, bytes): every action sends its messages once, so the
        counts follow from the plan."""
        count = {link: [0, 0] for link in self.links}
        for j, device in enumerate(self.sends):
            for sends in device:
                for to, size, _, _ in sends:
                    count[(j, to)][0] += 1
                    count[(j, to)][1] += size
        return {link: (c[0], c[1]) for link, c in count.items()}

    def run(self) -> PlanResult:
        if self.every is not None:
            self.env.schedule_at(self.every[0], self._tick, 1)
        for j in range(self.plan.k):
            self.env.schedule(0.0, self._try_start, j)
        self.env.run()
        stuck = [j for j in range(self.plan.k) if self.pc[j] < len(self.plan.devices[j])]
        held = [j for j in range(self.plan.k) if self.held[j] is not None]
        if held:  # the dry run has no capacity: back-pressure can stall a plan it passes
            raise InvalidArgument(f"plan {self.plan.method!r} deadlocks under capacity {self.capacity}: devices {held} hold outputs their receivers never take, "
                                  f"and devices {stuck} wait; raise the capacity")
        if stuck:  # check_plan rules this out; a plan built by hand may still get here
            raise InvalidArgument(f"plan {self.plan.method!r} stopped with devices {stuck} waiting: run check_plan on it for the reason")
        flat = [a for device in self.plan.devices for a in device]
        order = np.array(self.order, dtype=np.int64)
        actions = np.zeros(len(order), dtype=ACTION_DTYPE)
        if len(order):
            actions["device"] = np.array([a.device for a in flat], dtype=np.int32)[order]
            actions["kind"] = np.array([a.kind for a in flat], dtype="U12")[order]
            actions["step"] = np.array([a.step for a in flat], dtype=np.int64)[order]
            actions["micro"] = np.array([a.micro for a in flat], dtype=np.int32)[order]
            actions["start"] = np.array(self.start)[order]
            actions["finish"] = np.array(self.finish)[order]
        makespan = float(actions["finish"].max()) if len(actions) else 0.0
        return PlanResult(self.plan, actions, makespan, self._messages(), self.env.processed, self.rows)


def _is_dgl_plan(plan: Plan) -> bool:
    """Every action a local step; device j > 0's step t takes device j-1's step t."""
    return all(a.kind == "local" and a.needs == (((j - 1, "local", a.step, 0),) if j > 0 else ()) for j, d in enumerate(plan.devices) for a in d)


def run_plan(plan: Plan, costs: ActionCosts, *, seed: int = 0, work: Callable[[Action], None] | None = None,
             every: tuple[float, Callable[[float], None]] | None = None, capacity: int | None = None,
             durations: Sequence[Callable[[], float]] | None = None, trace: bool = False) -> PlanResult:
    """Execute `plan` in simulated time under `costs`; see the module docstring."""
    if every is not None and not every[0] > 0:
        raise InvalidArgument(f"'every' period of run_plan must be > 0, got {every[0]!r}")
    if capacity is not None and (not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 1):
        raise InvalidArgument(f"'capacity' of run_plan must be None (unbounded) or an int >= 1 (activations a link holds), got {capacity!r}")
    return _Executor(plan, costs, seed, work, every, capacity, durations, trace).run()
