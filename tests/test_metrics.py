import math
import time

import numpy as np
import pytest
from scipy import stats

from neurosim.metrics import (
    angle_deg,
    mean_std,
    slowness_fit,
    update_angle_deg,
    weight_distribution_fits,
)


# --- angles -----------------------------------------------------------------

def test_angle_orthogonal_antiparallel_parallel():
    assert angle_deg([1, 0], [0, 1]) == pytest.approx(90.0)
    assert angle_deg([1, 2, 3], [-1, -2, -3]) == pytest.approx(180.0)
    assert angle_deg([1, 2, 3], [1, 2, 3]) == pytest.approx(0.0, abs=1e-6)
    assert angle_deg([1, 0], [1, 1]) == pytest.approx(45.0)


def test_angle_scale_invariant_and_flattens():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(4, 5)), rng.normal(size=(4, 5))
    ref = angle_deg(a, b)
    assert angle_deg(3.7 * a, 0.01 * b) == pytest.approx(ref, abs=1e-9)
    expected = np.degrees(np.arccos(a.ravel() @ b.ravel() / np.linalg.norm(a) / np.linalg.norm(b)))
    assert ref == pytest.approx(expected)


def test_angle_errors_name_the_problem():
    with pytest.raises(ValueError, match="shape"):
        angle_deg(np.ones((2, 3)), np.ones(6))
    with pytest.raises(ValueError, match="b has zero norm"):
        angle_deg([1, 2], [0, 0])
    with pytest.raises(ValueError, match="a has zero norm"):
        angle_deg([0, 0], [1, 2])


def test_update_angle_zero_update_is_nan():
    assert math.isnan(update_angle_deg(np.zeros((3, 2)), np.ones((3, 2))))
    assert math.isnan(update_angle_deg(np.ones(4), np.zeros(4)))
    assert update_angle_deg([1, 0], [0, 2]) == pytest.approx(90.0)
    with pytest.raises(ValueError, match="shape"):
        update_angle_deg(np.zeros(3), np.zeros(4))


def test_mean_std_sample_std_and_nan_skipping():
    mean, std, n = mean_std([1.0, 2.0, 3.0, float("nan")])
    assert (mean, n) == (2.0, 3)
    assert std == pytest.approx(1.0)
    assert mean_std([5.0]) == (5.0, 0.0, 1)


# --- slowness ---------------------------------------------------------------

def plateau(t, a_max, s):
    return a_max * t / (s + t)


def test_slowness_fit_recovers_noiseless_parameters():
    t = np.arange(1, 61)
    fit = slowness_fit(t, plateau(t, 98.0, 0.5))
    assert fit.max_accuracy == pytest.approx(98.0, abs=1e-4)
    assert fit.slowness == pytest.approx(0.5, abs=1e-4)
    assert fit.n_points == 60
    assert fit.slowness_std < 1e-4


def test_slowness_fit_noisy_with_chance_and_max_epoch():
    rng = np.random.default_rng(1)
    t = np.arange(1, 101)
    acc = plateau(t, 52.0, 3.0) + rng.normal(0, 0.3, t.size)
    acc[t > 60] += 5.0  # a later LR-decay jump that max_epoch must exclude
    fit = slowness_fit(t, acc, chance=10.0, max_epoch=60)
    assert fit.n_points == 61
    assert fit.max_accuracy == pytest.approx(52.0, abs=0.5)
    assert fit.slowness == pytest.approx(3.0, abs=0.3)
    assert 0 < fit.slowness_std < 0.3 and 0 < fit.max_accuracy_std < 0.5


# Illustrative MNIST-like (a_max %, s epochs) pairs for BP, FA, DRTP, PEPITA.
@pytest.mark.parametrize("a_max, s", [(98.6, 0.33), (98.4, 0.42), (95.9, 0.36), (98.2, 0.95)])
def test_slowness_is_half_max_time(a_max, s):
    t = np.arange(1, 61)
    fit = slowness_fit(t, plateau(t, a_max, s), chance=0.0)
    assert plateau(fit.slowness, fit.max_accuracy, fit.slowness) == pytest.approx(a_max / 2, abs=1e-3)
    assert fit.slowness == pytest.approx(s, abs=1e-4)


def test_slowness_fit_input_errors():
    with pytest.raises(ValueError, match="at least 2"):
        slowness_fit([1], [50.0])
    with pytest.raises(ValueError, match="at least 2"):
        slowness_fit([1, 70, 80], [50, 60, 70], max_epoch=60)
    with pytest.raises(ValueError, match="finite"):
        slowness_fit([1, 2, 3], [50, np.nan, 70])
    with pytest.raises(ValueError, match="length"):
        slowness_fit([1, 2, 3], [50, 60])
    two = slowness_fit([1], [49.0], chance=0.0)  # exactly determined: no error bars
    assert two.n_points == 2 and math.isinf(two.slowness_std)


# --- weight distributions ---------------------------------------------------

def test_gaussian_weights_prefer_normal():
    w = np.random.default_rng(2).normal(0.01, 0.05, size=20_000)
    fits = weight_distribution_fits(w)
    assert fits.preferred == "normal"
    assert fits.aic_normal < fits.aic_t
    assert fits.normal_mean == pytest.approx(0.01, abs=2e-3)
    assert fits.normal_std == pytest.approx(0.05, rel=0.02)
    assert fits.aic_normal == pytest.approx(4 - 2 * fits.loglik_normal)
    assert fits.aic_t == pytest.approx(6 - 2 * fits.loglik_t)


def test_student_t_weights_prefer_t_and_recover_df():
    w = stats.t.rvs(3, loc=0.0, scale=0.05, size=20_000, random_state=3)
    fits = weight_distribution_fits(w)
    assert fits.preferred == "t"
    assert abs(fits.t_df - 3) <= 1
    assert fits.t_scale == pytest.approx(0.05, rel=0.05)


def test_t_fit_matches_scipy_mle():
    w = stats.t.rvs(4, loc=0.2, scale=1.5, size=3_000, random_state=4)
    fits = weight_distribution_fits(w)
    df, loc, scale = stats.t.fit(w)
    assert fits.loglik_t >= stats.t.logpdf(w, df, loc, scale).sum() - 1e-3
    assert (fits.t_df, fits.t_loc, fits.t_scale) == pytest.approx((df, loc, scale), rel=1e-2, abs=1e-2)


def test_large_arrays_are_subsampled_deterministically_and_fast():
    w = stats.t.rvs(5, scale=0.02, size=1_000_000, random_state=5)
    start = time.perf_counter()
    first = weight_distribution_fits(w)
    assert time.perf_counter() - start < 2.0
    assert first.n_samples == 200_000
    assert weight_distribution_fits(w) == first
    assert weight_distribution_fits(w[:1000]).n_samples == 1000


def test_weight_fit_input_errors():
    with pytest.raises(ValueError, match="nan"):
        weight_distribution_fits([0.1, np.nan, 0.2])
    with pytest.raises(ValueError, match="constant"):
        weight_distribution_fits(np.ones(10))
