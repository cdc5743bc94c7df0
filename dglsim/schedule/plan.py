"""A training method as data: a plan of actions per device, their dependencies, and what each
holds in memory. No torch; the executor (`dglsim.schedule.execute`) runs any plan in simulated
time, and training (`dglsim.train.scheduled`) plugs real work into it.

An `Action` is one thing a device does: `kind` (see KINDS) on mini-batch `step`, micro-batch
`micro`. A device runs its actions in plan order, one at a time. `needs` names actions on
other devices whose output this one waits for: each such dependency is a message on the link
between the two devices (an activation when it comes from a lower device, a gradient when it
comes from a higher one), so dependencies and communication are the same thing.

A `Hold` is memory a device keeps from the start of one of its actions to the finish of
another (or the same) one: a stash of saved activations for a backward, a stored input for a
replay, an output kept for a synthesizer update. `dglsim.schedule.memory` replays them.

`check_plan` is the dry run: it executes the plan's dependency order with no durations and
raises a PlanError naming the devices that wait forever and what they wait for, so a plan that
would deadlock never reaches the engine. `describe` prints a plan, one line per device.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from dglsim.errors import InvalidArgument

__all__ = ["KINDS", "HOLDS", "Key", "Action", "Hold", "Plan", "Wiring", "PlanError", "check_plan", "describe"]

# forward: a stage's forward that keeps its graph (its saved activations) for a backward;
# backward: the backward of a kept forward with a gradient that came from the next device (or the loss);
# update: an optimizer step on the gradients accumulated so far;
# forward_only: a forward without a graph (frozen prefix, features replay's new batch);
# replay: features replay's recomputed forward on a stored input and its backward;
# local: DGL's local step (forward, auxiliary head, local backward, update);
# dni_step: DNI's step (forward, synthesizer's prediction, backward with it, update);
# synth_update: a synthesizer trained on the true gradient that came back.
KINDS = ("forward", "backward", "update", "forward_only", "replay", "local", "dni_step", "synth_update")
CODES = {"forward": "F", "backward": "B", "update": "U", "forward_only": "f", "replay": "R", "local": "L", "dni_step": "D", "synth_update": "S"}
# what a hold keeps (dglsim.schedule.memory sizes them): saved tensors of a stage's forward; a
# module's input (features replay); a module's output (a DNI synthesizer's training input)
HOLDS = ("stash", "input", "output")

Key = tuple[int, str, int, int]  # (device, kind, step, micro): an action's name, unique in a plan


class PlanError(InvalidArgument):
    """A plan that cannot run: a dependency on a missing action, or a deadlock."""


@dataclass(frozen=True, slots=True)
class Action:
    device: int
    kind: str
    step: int
    micro: int = 0
    needs: tuple[Key, ...] = ()

    @property
    def key(self) -> Key:
        return (self.device, self.kind, self.step, self.micro)


@dataclass(frozen=True, slots=True)
class Hold:
    device: int
    what: str  # one of HOLDS
    samples: int  # the samples it holds (a micro-batch or a batch)
    start: Key  # allocated when this action starts
    until: Key  # released when this action finishes


@dataclass
class Plan:
    """The actions of each device in order, the memory they hold, and the method's name."""

    method: str
    devices: list[list[Action]]
    holds: list[Hold] = field(default_factory=list)
    batch: int = 1  # samples per mini-batch (a hold's samples are out of these)

    @property
    def k(self) -> int:
        return len(self.devices)

    def actions(self) -> int:
        return sum(len(d) for d in self.devices)

    def index(self) -> dict[Key, Action]:
        return {a.key: a for device in self.devices for a in device}

    @cached_property
    def wiring(self) -> "Wiring":
        """The plan's dependencies as numbers, computed on first use and kept: a plan is not
        changed once it runs (every run of it, whatever its costs and seed, shares this)."""
        return Wiring.of(self)


@dataclass(frozen=True)
class Wiring:
    """A plan's dependencies as numbers, what the executor's hot path indexes: action n is
    device j's action i with n = offset[j] + i (plan order, device after device); message
    2n + 1 is action n's output going up, 2n its output going down (an output may go both
    ways: DNI); needs[j][i] are the messages device j's action i waits for; receivers[n] the
    devices action n sends to; links the directed (sender, receiver) pairs that carry any."""

    offset: list[int]
    needs: list[list[tuple[int, ...]]]
    receivers: dict[int, list[int]]
    links: list[tuple[int, int]]

    @classmethod
    def of(cls, plan: "Plan") -> "Wiring":
        offset = [0] * plan.k
        for j in range(1, plan.k):
            offset[j] = offset[j - 1] + len(plan.devices[j - 1])
        number = dict(zip((a.key for device in plan.devices for a in device), range(plan.actions())))
        needs: list[list[tuple[int, ...]]] = []
        receivers: dict[int, list[int]] = {}
        links: set[tuple[int, int]] = set()
        for j, device in enumerate(plan.devices):
            waits: list[tuple[int, ...]] = []
            for a in device:
                messages = []
                for need in a.needs:
                    producer = number[need]
                    messages.append(2 * producer + (j > need[0]))
                    receivers.setdefault(producer, []).append(j)
                    links.add((need[0], j))
                waits.append(tuple(messages))
            needs.append(waits)
        return cls(offset, needs, receivers, sorted(links))


def check_plan(plan: Plan) -> None:
    """Raise PlanError unless every action's device and kind are valid, its needs exist on other
    devices, holds name actions of their device, and the plan runs to its end (no deadlock)."""
    index = plan.index()
    if len(index) != plan.actions():
        seen: set[Key] = set()
        dup = next(a.key for d in plan.devices for a in d if a.key in seen or seen.add(a.key))
        raise PlanError(f"plan {plan.method!r}: action {dup} appears twice")
    for j, device in enumerate(plan.devices):
        for a in device:
            if a.device != j or a.kind not in KINDS:
                raise PlanError(f"plan {plan.method!r}: action {a.key} is listed on device {j} (its kind must be one of {list(KINDS)})")
            for need in a.needs:
                if need not in index:
                    raise PlanError(f"plan {plan.method!r}: action {a.key} needs {need}, which no device runs")
                if need[0] == j:
                    raise PlanError(f"plan {plan.method!r}: action {a.key} needs {need} on its own device (plan order says that)")
    for h in plan.holds:
        if h.what not in HOLDS or h.start not in index or h.until not in index or h.start[0] != h.device or h.until[0] != h.device:
            raise PlanError(f"plan {plan.method!r}: hold {h} must keep one of {list(HOLDS)} between two actions of device {h.device}")
    _dry_run(plan)


def _dry_run(plan: Plan) -> None:
    """Run the plan's order with no time: each device starts its next action once its needs are
    done. Stuck before the end is a deadlock; the message names each waiting device and need."""
    done: set[Key] = set()
    pc = [0] * plan.k
    waiting = {j for j in range(plan.k) if plan.devices[j]}
    # a device that finishes an action may unblock others: a worklist of devices to look at
    ready = list(waiting)
    while ready:
        j = ready.pop()
        device = plan.devices[j]
        progressed = False
        while pc[j] < len(device) and all(n in done for n in device[pc[j]].needs):
            done.add(device[pc[j]].key)
            pc[j] += 1
            progressed = True
        if progressed:
            ready.extend(i for i in range(plan.k) if i != j and pc[i] < len(plan.devices[i]))
            ready = list(dict.fromkeys(ready))
    stuck = [(j, plan.devices[j][pc[j]]) for j in range(plan.k) if pc[j] < len(plan.devices[j])]
    if stuck:
        lines = "; ".join(f"device {j} at {a.key} waits for {[n for n in a.needs if n not in done]}" for j, a in stuck)
        raise PlanError(f"plan {plan.method!r} deadlocks: {lines}")


def describe(plan: Plan, *, steps: int | None = None) -> str:
    """The plan as text, one line per device: each action as its kind's letter, step and micro-batch
    (F0.1 = forward of step 0, micro-batch 1); `steps` limits it to the first mini-batches."""
    lines = [f"plan {plan.method}: {plan.k} devices, {plan.actions()} actions"]
    for j, device in enumerate(plan.devices):
        shown = [a for a in device if steps is None or a.step < steps]
        lines.append(f"device {j}: " + " ".join(f"{CODES[a.kind]}{a.step}" + (f".{a.micro}" if a.micro else "") for a in shown))
    return "\n".join(lines)
