import math

import pytest

from dglsim.engine import LATE, URGENT, Environment
from dglsim.errors import InvalidArgument


def test_events_run_by_time_then_priority_then_schedule_order():
    env = Environment()
    log = []
    env.schedule(2.0, log.append, "t2")
    env.schedule(1.0, log.append, "t1-normal-a")
    env.schedule(1.0, log.append, "t1-late", priority=LATE)
    env.schedule(1.0, log.append, "t1-urgent", priority=URGENT)
    env.schedule(1.0, log.append, "t1-normal-b")
    env.run()
    assert log == ["t1-urgent", "t1-normal-a", "t1-normal-b", "t1-late", "t2"]
    assert env.now == 2.0 and env.processed == 5


def test_run_until_stops_the_clock_there():
    env = Environment()
    log = []
    for t in (1.0, 2.0, 3.0):
        env.schedule(t, log.append, t)
    env.run(until=2.5)
    assert log == [1.0, 2.0] and env.now == 2.5 and env.peek() == 3.0
    env.run()
    assert log == [1.0, 2.0, 3.0] and env.peek() == math.inf


@pytest.mark.parametrize("delay", [-1.0, math.nan])
def test_negative_or_nan_delay_is_rejected(delay):
    with pytest.raises(InvalidArgument, match="'delay' of Environment.schedule must be a real >= 0"):
        Environment().schedule(delay, print)


def test_schedule_at_rejects_the_past():
    env = Environment(start=5.0)
    with pytest.raises(InvalidArgument, match="must be >= now"):
        env.schedule_at(4.0, print)
