import math

import numpy as np
import pytest
from scipy import stats

from dglsim.delays import AtLeast, Constant, Distribution, Replay, Straggler, delay_from_spec, exponential, gamma, lognormal, pareto
from dglsim.errors import InvalidArgument

N = 400_000


@pytest.mark.parametrize("model,cv", [(exponential(0.02), 1.0), (gamma(0.02, 0.3), 0.3), (lognormal(0.02, 0.5), 0.5)])
def test_mean_and_cv_forms_hit_their_moments(model, cv):
    """Sample mean within 4 standard errors (cv * mean / sqrt(N)); sample cv within 2%."""
    x = model.sample(np.random.default_rng(0), N)
    assert abs(x.mean() - 0.02) < 4 * cv * 0.02 / math.sqrt(N)
    assert model.mean == pytest.approx(0.02, rel=1e-12)
    assert x.std() / x.mean() == pytest.approx(cv, rel=0.02)


def test_pareto_has_the_requested_mean_and_cv_in_closed_form():
    model = pareto(0.02, 0.5)
    frozen = model.frozen
    assert frozen.mean() == pytest.approx(0.02, rel=1e-12)
    assert frozen.std() / frozen.mean() == pytest.approx(0.5, rel=1e-12)
    x = model.sample(np.random.default_rng(1), N)
    assert abs(x.mean() - 0.02) < 4 * frozen.std() / math.sqrt(N)


def test_any_scipy_distribution_by_name():
    model = delay_from_spec({"dist": "lognorm", "s": 0.5, "scale": 0.01}, where="compute")
    assert model.mean == pytest.approx(stats.lognorm(s=0.5, scale=0.01).mean())
    x = model.sample(np.random.default_rng(2), 1000)
    assert stats.kstest(x, stats.lognorm(s=0.5, scale=0.01).cdf).pvalue > 0.001


def test_straggler_mixture_mean_and_fraction():
    model = Straggler(Constant(1.0), q=0.1, factor=5.0)
    x = model.sample(np.random.default_rng(3), N)
    slow = (x == 5.0).mean()
    assert abs(slow - 0.1) < 4 * math.sqrt(0.09 / N) and set(np.unique(x)) == {1.0, 5.0}
    assert model.mean == pytest.approx(1.4)
    stream = model.stream(np.random.default_rng(3), block=64)
    assert abs(np.mean([stream() for _ in range(20_000)]) - 1.4) < 4 * math.sqrt(0.09 * 16 / 20_000)


def test_replay_is_in_order_and_cycles_or_runs_out(tmp_path):
    stream = Replay((0.1, 0.2, 0.3)).stream(np.random.default_rng(0))
    assert [stream() for _ in range(7)] == [0.1, 0.2, 0.3, 0.1, 0.2, 0.3, 0.1]
    once = Replay((0.1, 0.2), cycle=False).stream(np.random.default_rng(0))
    assert [once(), once()] == [0.1, 0.2]
    with pytest.raises(InvalidArgument, match="ran out after its 2 values"):
        once()
    (tmp_path / "t.txt").write_text("# measured\n0.5\n0.25\n")
    model = delay_from_spec({"kind": "replay", "file": str(tmp_path / "t.txt")}, where="compute")
    assert model.values == (0.5, 0.25)


def test_streams_are_reproducible_scaling_is_exact_and_take_equals_calls():
    model = gamma(1.0, 0.5)
    a = model.stream(np.random.default_rng(7), block=100)
    b = model.stream(np.random.default_rng(7), block=100)
    first = [a() for _ in range(150)]
    assert first == [b() for _ in range(150)]
    np.testing.assert_array_equal(a.take(333), [b() for _ in range(333)])
    scaled = model.scaled(2.0).stream(np.random.default_rng(7), block=100)
    np.testing.assert_array_equal(scaled.take(150), 2.0 * np.asarray(first))


@pytest.mark.parametrize(("spec", "match"), [
    ({"dist": "norm", "loc": 1.0}, "must have support in \\[0, inf\\)"),
    ({"dist": "binom", "n": 3, "p": 0.5}, "must name a scipy.stats continuous distribution"),
    ({"dist": "gamma", "shape": 2.0}, "not accepted by scipy.stats"),
    ({"kind": "weibull", "mean": 1.0}, "'kind' of compute must be one of"),
    ({"kind": "gamma", "mean": 1.0}, "missing \\['cv'\\]"),
    ({"kind": "gamma", "mean": -1.0, "cv": 0.5}, "'mean' of gamma delay must be a finite real > 0, got -1.0"),
    ({"kind": "constant", "value": 1.0, "extra": 2}, "unknown \\['extra'\\]"),
    ({"kind": "straggler", "base": 1.0, "q": 1.5, "factor": 3}, "'q' of Straggler must be a real in \\[0.0, 1.0\\], got 1.5"),
    ({"kind": "straggler", "base": 1.0, "q": 0.1, "factor": 0.5}, "'factor' of Straggler must be a finite real >= 1"),
    ({"kind": "replay", "values": [1.0, -2.0]}, "'values' of Replay must be a non-empty tuple of finite reals >= 0, got \\(1.0, -2.0\\)"),
    ({"kind": "replay"}, "exactly one of 'values' or 'file'"),
    ("fast", "'compute' must be a number or a delay table"),
])
def test_bad_delay_specs_are_rejected_naming_the_rule(spec, match):
    with pytest.raises(InvalidArgument, match=match):
        delay_from_spec(spec, where="compute")


def test_distribution_models_compare_by_value():
    assert exponential(0.5) == Distribution("expon", (("scale", 0.5),)) and Constant(1.0) != Constant(2.0)


@pytest.mark.parametrize("base", [lognormal(1.0, 0.5), lognormal(1.0, 0.3).scaled(0.7), Straggler(Constant(1.0), 0.2, 3.0),
                                  Straggler(gamma(1.0, 0.4), 0.1, 2.0), Replay((0.5, 1.5, 2.0)), Constant(0.4)],
                         ids=["lognormal", "scaled", "straggler", "straggler-gamma", "replay", "constant"])
def test_at_least_has_the_mean_of_its_floored_draws(base):
    """The exact mean of max(floor, X) against 400,000 draws: within 4 Monte-Carlo standard errors."""
    model = AtLeast(base, 1.0)
    draws = model.sample(np.random.default_rng(0), 400_000)
    assert draws.min() >= 1.0
    assert abs(model.mean - draws.mean()) < 4 * draws.std() / np.sqrt(draws.size) + 1e-12
    assert model.mean >= max(1.0, base.mean) - 1e-12  # Jensen: flooring never lowers the mean


def test_at_least_rejects_a_bad_floor():
    with pytest.raises(InvalidArgument, match="'floor' of AtLeast must be a finite real >= 0, got -1"):
        AtLeast(Constant(1.0), -1)
