"""The bound terms of the convergence result, computed from its constants, and a check of the
summability assumptions on finite sequences (see proofs/).

Descent lemma (one step, module j, inputs of law q_t, limit law q*):

    E L(theta_{t+1}) <= E L(theta_t) - eta_t E|grad L(theta_t)|^2 + sqrt(2) G eta_t sqrt(c_t) + (L G / 2) eta_t^2

Summed over t = 0..T-1 and divided by sum eta_t, it bounds min_t E|grad L(theta_t)|^2 by

    [L(theta_0) - inf L + sqrt(2) G sum eta_t sqrt(c_t) + (L G / 2) sum eta_t^2] / sum eta_t,

which goes to 0 when sum eta_t = inf, sum eta_t^2 < inf (A2) and sum eta_t sqrt(c_t) < inf (A4).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dglsim.errors import InvalidArgument

__all__ = ["descent_slack", "quantized_descent_slack", "logistic_quantization_bias_bound", "corollary_bound", "corollary_from_sums", "trajectory_bound",
           "power_law_decay", "rate_bound", "tail_exponent", "SummabilityReport", "summability"]


def _sequence(name: str, values, where: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1 or arr.size < 1 or not np.isfinite(arr).all() or (arr < 0).any():
        raise InvalidArgument(f"'{name}' of {where} must be a non-empty 1-d sequence of finite reals >= 0, got shape {arr.shape}")
    return arr


def descent_slack(loss_now, loss_next, grad_norm2, eta: float, c: float, smoothness: float, second_moment: float):
    """Right-hand side minus left-hand side of the descent lemma for one step (>= 0 when it
    holds in expectation). The losses and squared gradient norms may be arrays (one per run):
    the lemma is about their means."""
    rhs = np.asarray(loss_now) - eta * np.asarray(grad_norm2) + np.sqrt(2) * second_moment * eta * np.sqrt(c) + smoothness * second_moment / 2 * eta**2
    return rhs - np.asarray(loss_next)


def quantized_descent_slack(loss_now, loss_next, grad_norm2, eta: float, c: float, bias: float, smoothness: float,
                            second_moment: float, decoded_second_moment: float):
    """The descent lemma when the module trains on decoded inputs (proofs/06_quantized.md):

        E L(theta_{t+1}) <= E L(theta_t) - eta E|grad L|^2 + eta sqrt(G) (sqrt(2 G c) + B) + (L G~ / 2) eta^2,

    with B >= |E[grad l(theta; Q(x)) - grad l(theta; x)]| (the quantization bias of the gradient)
    and G~ the second moment of gradients on decoded inputs. Right minus left side."""
    rhs = (np.asarray(loss_now) - eta * np.asarray(grad_norm2) + eta * np.sqrt(second_moment) * (np.sqrt(2 * second_moment * c) + bias)
           + smoothness * decoded_second_moment / 2 * eta**2)
    return rhs - np.asarray(loss_next)


def logistic_quantization_bias_bound(theta: np.ndarray, x: np.ndarray, decoded: np.ndarray) -> float:
    """B for the logistic loss, from samples of x and Q(x) (rows): the gradient -s(-u) y x has
    Jacobian in x of norm <= 1 + |theta| |x| / 4, so along the segment from x to Q(x)
    |grad l(Q(x)) - grad l(x)| <= (1 + |theta| max(|x|, |Q(x)|) / 4) |Q(x) - x|, and by
    Cauchy-Schwarz B <= sqrt(E Lambda^2) sqrt(D), D = E|Q(x) - x|^2 the distortion."""
    x, decoded = np.asarray(x, float), np.asarray(decoded, float)
    lam = 1 + np.linalg.norm(theta) * np.maximum(np.linalg.norm(x, axis=-1), np.linalg.norm(decoded, axis=-1)) / 4
    distortion = ((decoded - x) ** 2).sum(-1).mean()
    return float(np.sqrt((lam**2).mean()) * np.sqrt(distortion))


def corollary_bound(initial_gap: float, smoothness: float, second_moment: float, etas, cs, *, biases=None,
                    decoded_second_moment: float | None = None) -> np.ndarray:
    """The bound on min_{t<T} E|grad L|^2 for every horizon T = 1..len(etas).

    With a quantized link (proofs/06_quantized.md), `biases` holds B_t >= |E[grad l(Q_t(x)) -
    grad l(x)]| per step and `decoded_second_moment` G~ the second moment on decoded inputs:

        [gap + sqrt(2) G sum eta_t sqrt(c_t) + sqrt(G) sum eta_t B_t + (L G~ / 2) sum eta_t^2] / sum eta_t.
    """
    etas, cs = _sequence("etas", etas, "corollary_bound"), _sequence("cs", cs, "corollary_bound")
    if len(cs) < len(etas):
        raise InvalidArgument(f"'cs' of corollary_bound must hold one c_t per step ({len(etas)}), got {len(cs)}")
    cs = cs[: len(etas)]
    if biases is not None:
        biases = _sequence("biases", biases, "corollary_bound")
        if len(biases) < len(etas):
            raise InvalidArgument(f"'biases' of corollary_bound must hold one B_t per step ({len(etas)}), got {len(biases)}")
    bias_sums = np.zeros(len(etas)) if biases is None else np.cumsum(etas * biases[: len(etas)])
    return corollary_from_sums(initial_gap, smoothness, second_moment, np.cumsum(etas), np.cumsum(etas**2), np.cumsum(etas * np.sqrt(cs)), bias_sums,
                               decoded_second_moment=decoded_second_moment)


def corollary_from_sums(initial_gap, smoothness, second_moment, sum_eta, sum_eta2, sum_eta_sqrt_c, sum_eta_bias=0.0, *,
                        decoded_second_moment: float | None = None):
    """The corollary's bound from the sums it is made of (each at one horizon, or arrays of
    horizons): [gap + sqrt(2) G sum eta sqrt(c) + sqrt(G) sum eta B + (L G~ / 2) sum eta^2] / sum eta.
    The sums of one run and the constants of another give the bound a held-out seed predicts."""
    curvature_moment = second_moment if decoded_second_moment is None else decoded_second_moment
    numerator = (initial_gap + np.sqrt(2) * second_moment * np.asarray(sum_eta_sqrt_c) + np.sqrt(second_moment) * np.asarray(sum_eta_bias)
                 + smoothness * curvature_moment / 2 * np.asarray(sum_eta2))
    return numerator / np.asarray(sum_eta)


def trajectory_bound(loss_drop, bias_sum, curvature_sum, sum_eta):
    """The trajectory form (proofs/07_trajectory.md): the eta-weighted mean of E|grad L(theta_t)|^2
    over t < T is at most

        [E L(theta_0) - E L(theta_T) + sum eta_t E[|grad L(theta_t)| |grad L~_t(theta_t) - grad L(theta_t)|]
         + (1/2) sum eta_t^2 E[g_t^T H_t g_t]] / sum eta_t,

    the realized loss drop, the realized bias (what the module trains on against the limit) and
    the curvature each step meets, in place of the global gap, sqrt(2) G sqrt(c_t) and L G."""
    return (np.asarray(loss_drop) + np.asarray(bias_sum) + np.asarray(curvature_sum)) / np.asarray(sum_eta)


def power_law_decay(steps, values) -> tuple[float, float, int]:
    """(alpha, its standard error, distinct steps) of values ~ steps^-alpha, by least squares on
    log-log over the points with step >= 1 and value > 0. Fewer than 3 distinct steps: (nan, nan, n)."""
    steps, values = np.asarray(steps, float), np.asarray(values, float)
    keep = (steps >= 1) & (values > 0) & np.isfinite(values)
    n = len(np.unique(steps[keep]))
    if n < 3:
        return float("nan"), float("nan"), n
    x, y = np.log(steps[keep]), np.log(values[keep])
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (slope * x + intercept)
    se = float(np.sqrt((residual**2).sum() / (n - 2) / ((x - x.mean()) ** 2).sum()))
    return float(-slope), se, n


def rate_bound(initial_gap: float, smoothness: float, second_moment: float, *, eta0: float, alpha: float,
               c0: float, beta: float, horizons) -> np.ndarray:
    """The rate corollary: with eta_t = eta0 (t+1)^-alpha, 1/2 < alpha <= 1, and
    c_t <= c0 (t+1)^-beta with alpha + beta/2 > 1, the corollary bound at horizon T is at most

        [gap + sqrt(2) G eta0 sqrt(c0) zeta(alpha + beta/2) + (L G / 2) eta0^2 zeta(2 alpha)] / S_T,
        S_T = eta0 ((T+1)^(1-alpha) - 1) / (1 - alpha)   (eta0 ln(T+1) when alpha = 1),

    that is O(T^-(1-alpha)) (O(1 / log T) at alpha = 1). zeta is Riemann's zeta (the tails'
    sums); S_T lower-bounds sum_{t<T} eta_t by the integral of a decreasing function."""
    from scipy.special import zeta

    if not 0.5 < alpha <= 1:
        raise InvalidArgument(f"'alpha' of rate_bound must be in (1/2, 1] (A2), got {alpha!r}")
    if not alpha + beta / 2 > 1:
        raise InvalidArgument(f"'beta' of rate_bound must make alpha + beta/2 > 1 (A4), got alpha = {alpha!r}, beta = {beta!r}")
    t = np.asarray(horizons, dtype=float)
    numerator = initial_gap + np.sqrt(2) * second_moment * eta0 * np.sqrt(c0) * zeta(alpha + beta / 2) + smoothness * second_moment / 2 * eta0**2 * zeta(2 * alpha)
    steps = eta0 * np.log(t + 1) if alpha == 1 else eta0 * ((t + 1) ** (1 - alpha) - 1) / (1 - alpha)
    return numerator / steps


def tail_exponent(values) -> float:
    """p such that values_t ~ t^-p over the second half of the sequence (least squares on
    log-log); +inf when the tail reaches 0 (faster than any power, e.g. geometric to underflow)."""
    v = _sequence("values", values, "tail_exponent")
    t = np.arange(1, v.size + 1, dtype=float)
    tail = slice(v.size // 2, None)
    if (v[tail] == 0).any():
        return float("inf")
    slope = np.polyfit(np.log(t[tail]), np.log(v[tail]), 1)[0]
    return float(-slope)


@dataclass(frozen=True)
class SummabilityReport:
    """Which summability assumptions a finite run is consistent with, from the tail exponents of
    its sequences (a power law t^-p has a finite sum iff p > 1)."""

    step_exponent: float  # eta_t ~ t^-a
    weighted_distance_exponent: float  # eta_t sqrt(c_t) ~ t^-b
    distance_exponent: float  # c_t ~ t^-e
    margin: float

    @property
    def steps_diverge(self) -> bool:  # sum eta_t = inf
        return self.step_exponent <= 1 + self.margin

    @property
    def squares_converge(self) -> bool:  # sum eta_t^2 < inf
        return 2 * self.step_exponent > 1 + self.margin

    @property
    def a2(self) -> bool:
        return self.steps_diverge and self.squares_converge

    @property
    def a4(self) -> bool:
        """The form the proof needs: sum eta_t sqrt(c_t) < inf."""
        return self.weighted_distance_exponent > 1 + self.margin

    @property
    def a4_summable_distance(self) -> bool:
        """The stronger form sum c_t < inf (with A2 it implies the one the proof needs)."""
        return self.distance_exponent > 1 + self.margin


def summability(etas, cs, *, margin: float = 0.05) -> SummabilityReport:
    """Tail exponents of eta_t, eta_t sqrt(c_t) and c_t. `margin` keeps power laws at the edge
    (p = 1 exactly, where the sum diverges logarithmically) on the side they belong to, against
    the bias of a fit over a finite tail."""
    etas, cs = _sequence("etas", etas, "summability"), _sequence("cs", cs, "summability")
    cs = cs[: len(etas)]
    return SummabilityReport(tail_exponent(etas), tail_exponent(etas * np.sqrt(cs)), tail_exponent(cs), margin)
