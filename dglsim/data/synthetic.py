"""Synthetic classification data whose law is known in closed form.

A Gaussian mixture: class c has prior w_c and x | c ~ N(mu_c, sigma^2 I). The posterior,
the Bayes classifier and the density are exact, so theory checks can compare estimators
with true values instead of with other estimates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import logsumexp

from dglsim.errors import InvalidArgument

__all__ = ["GaussianMixture", "FeatureSet"]


@dataclass(frozen=True)
class FeatureSet:
    """Float features and labels of one split. features: (N, D) float32, labels: (N,) int64."""

    features: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]
    source: str = "synthetic"

    def __len__(self) -> int:
        return self.features.shape[0]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.features.shape[1:])

    def take(self, index) -> "FeatureSet":
        index = torch.as_tensor(index, dtype=torch.long)
        return FeatureSet(self.features[index], self.labels[index], self.classes, self.source)

    def to(self, device) -> "FeatureSet":
        return FeatureSet(self.features.to(device), self.labels.to(device), self.classes, self.source)


@dataclass(frozen=True)
class GaussianMixture:
    """means: (C, D); sigma: the common isotropic standard deviation; weights: (C,) priors."""

    means: np.ndarray
    sigma: float
    weights: np.ndarray

    def __post_init__(self) -> None:
        if np.ndim(self.means) != 2:
            raise InvalidArgument(f"'means' of GaussianMixture must be a 2-d array (classes, dim), got shape {np.shape(self.means)}")
        if not self.sigma > 0:
            raise InvalidArgument(f"'sigma' of GaussianMixture must be a finite real > 0, got {self.sigma!r}")
        w = np.asarray(self.weights, dtype=float)
        if w.shape != (len(self.means),) or (w < 0).any() or not np.isclose(w.sum(), 1.0):
            raise InvalidArgument(f"'weights' of GaussianMixture must be {len(self.means)} non-negative reals summing to 1, got {self.weights!r}")

    @classmethod
    def random(cls, classes: int, dim: int, *, separation: float, sigma: float = 1.0, rng: np.random.Generator) -> "GaussianMixture":
        """Class means drawn uniformly on the sphere of radius separation * sigma / 2 (equal priors)."""
        means = rng.standard_normal((classes, dim))
        means *= separation * sigma / 2 / np.linalg.norm(means, axis=1, keepdims=True)
        return cls(means, sigma, np.full(classes, 1.0 / classes))

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(x, y): x (n, D) float64, y (n,) int64."""
        y = rng.choice(len(self.weights), size=n, p=self.weights)
        x = self.means[y] + self.sigma * rng.standard_normal((n, self.dim))
        return x, y.astype(np.int64)

    def log_joint(self, x: np.ndarray) -> np.ndarray:
        """log p(x, c) for every class: (n, C)."""
        sq = ((x[:, None, :] - self.means[None]) ** 2).sum(-1)
        log_norm = -0.5 * self.dim * np.log(2 * np.pi * self.sigma**2)
        return np.log(self.weights)[None] + log_norm - sq / (2 * self.sigma**2)

    def log_density(self, x: np.ndarray) -> np.ndarray:
        return logsumexp(self.log_joint(x), axis=1)

    def posterior(self, x: np.ndarray) -> np.ndarray:
        lj = self.log_joint(x)
        return np.exp(lj - logsumexp(lj, axis=1, keepdims=True))

    def bayes_predict(self, x: np.ndarray) -> np.ndarray:
        return self.log_joint(x).argmax(1)

    def dataset(self, n: int, rng: np.random.Generator) -> FeatureSet:
        x, y = self.sample(n, rng)
        names = tuple(f"class{c}" for c in range(len(self.weights)))
        return FeatureSet(torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y), names)
