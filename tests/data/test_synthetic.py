import numpy as np
import pytest
from scipy import stats

from dglsim.data import GaussianMixture
from dglsim.errors import InvalidArgument


def test_posterior_is_a_distribution_and_matches_bayes_rule():
    law = GaussianMixture.random(4, 6, separation=3.0, rng=np.random.default_rng(0))
    x, _ = law.sample(500, np.random.default_rng(1))
    post = law.posterior(x)
    np.testing.assert_allclose(post.sum(1), 1.0, atol=1e-12)
    # Bayes rule by hand from scipy's multivariate normal densities
    dens = np.stack([stats.multivariate_normal(m, law.sigma**2).pdf(x) for m in law.means], 1) * law.weights
    np.testing.assert_allclose(post, dens / dens.sum(1, keepdims=True), rtol=1e-9)
    np.testing.assert_allclose(law.log_density(x), np.log(dens.sum(1)), rtol=1e-9)


def test_bayes_accuracy_of_two_classes_equals_the_closed_form():
    """Two equiprobable classes at distance d: Bayes accuracy is Phi(d / 2 sigma). The Monte-Carlo
    estimate over n = 200,000 samples has std sqrt(p(1-p)/n) < 0.0012; tolerance 4 std."""
    law = GaussianMixture.random(2, 5, separation=2.0, sigma=1.5, rng=np.random.default_rng(3))
    d = np.linalg.norm(law.means[0] - law.means[1])
    x, y = law.sample(200_000, np.random.default_rng(4))
    accuracy = (law.bayes_predict(x) == y).mean()
    assert abs(accuracy - stats.norm.cdf(d / (2 * law.sigma))) < 4 * 0.0012


def test_sample_moments_match_the_law():
    law = GaussianMixture(np.array([[0.0, 0.0], [4.0, 0.0]]), 0.5, np.array([0.25, 0.75]))
    x, y = law.sample(100_000, np.random.default_rng(5))
    assert abs(y.mean() - 0.75) < 4 * np.sqrt(0.75 * 0.25 / 100_000)
    np.testing.assert_allclose(x[y == 1].mean(0), [4.0, 0.0], atol=4 * 0.5 / np.sqrt(70_000))
    np.testing.assert_allclose(x[y == 0].std(0), [0.5, 0.5], rtol=0.02)


@pytest.mark.parametrize(("kwargs", "match"), [
    (dict(means=np.zeros(3), sigma=1.0, weights=np.ones(1)), "'means' of GaussianMixture"),
    (dict(means=np.zeros((2, 2)), sigma=0.0, weights=np.full(2, 0.5)), "'sigma' of GaussianMixture"),
    (dict(means=np.zeros((2, 2)), sigma=1.0, weights=np.array([0.7, 0.7])), "'weights' of GaussianMixture"),
])
def test_rejects_bad_laws(kwargs, match):
    with pytest.raises(InvalidArgument, match=match):
        GaussianMixture(**kwargs)
