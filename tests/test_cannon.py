"""The Cannon, SpectraFM's Table 1 expert (baselines/cannon.py): its terms by hand, and labels recovered
from spectra that a known polynomial made."""

import numpy as np
import pytest

from pipeline.baselines.cannon import design_matrix, fit_cannon, polynomial_terms


def test_polynomial_terms_and_design_by_hand():
    assert polynomial_terms(2, 2) == [(), (0,), (1,), (0, 0), (0, 1), (1, 1)]
    assert len(polynomial_terms(5, 3)) == 56  # C(5 + 3, 3)
    np.testing.assert_allclose(design_matrix([[2.0, 3.0]], polynomial_terms(2, 2)), [[1, 2, 3, 4, 6, 9]])


def _toy(n, rng, noise=0.0):
    """Spectra of 300 pixels quadratic in two labels (Teff-like and logg-like), with NaN pixels."""
    labels = np.column_stack([rng.uniform(4000, 5000, n), rng.uniform(1.0, 3.5, n)])
    z = (labels - [4500.0, 2.25]) / [300.0, 0.7]
    pix = np.random.default_rng(7)
    a, b, c = pix.normal(0, 0.05, (3, 300))
    flux = 0.9 + z[:, :1] * a + z[:, 1:] ** 2 * b + z[:, :1] * z[:, 1:] * c
    return labels, flux + noise * rng.standard_normal(flux.shape)


def test_the_cannon_recovers_labels_of_noise_free_and_noisy_spectra():
    rng = np.random.default_rng(0)
    labels, flux = _toy(400, rng)
    flux[rng.random(flux.shape) < 0.02] = np.nan  # bad training pixels take the pixel's median
    cannon = fit_cannon(labels, flux, order=2)
    test_labels, test_flux = _toy(30, rng)
    got = cannon.infer(test_flux, 0.01)
    worst = np.abs(got - test_labels).max(axis=0)
    assert worst[0] < 1.0 and worst[1] < 0.003  # bad training pixels refilled by the model cost next to nothing
    noisy_labels, noisy = _toy(200, rng, noise=0.01)
    noisy[:, :30] = np.nan  # bad pixels are left out of the fit
    got = cannon.infer(noisy, 0.01)
    err = np.median(np.abs(got - noisy_labels), axis=0)
    assert err[0] < 30.0 and err[1] < 0.1


def test_the_cannon_says_when_it_has_too_few_spectra():
    labels, flux = _toy(20, np.random.default_rng(1))
    with pytest.raises(ValueError, match="56 terms per pixel: it needs more than 112 training spectra, got 20"):
        fit_cannon(np.column_stack([labels, labels, labels[:, :1]]), flux, order=3)
    with pytest.raises(ValueError, match="one label row per spectrum"):
        fit_cannon(labels[:5], flux)


def test_the_batched_fit_finds_the_minimum_scipy_finds_star_by_star():
    """least_squares_batch against scipy's least_squares (trust region, numerical Jacobian) from the
    same starts, on noisy spectra with bad pixels: the same labels to 1e-4 of their spread (never a worse fit)."""
    from scipy.optimize import least_squares

    from pipeline.baselines.cannon import least_squares_batch

    rng = np.random.default_rng(3)
    cannon = fit_cannon(*_toy(400, rng), order=2)
    _, flux = _toy(40, rng, noise=0.01)
    flux[rng.random(flux.shape) < 0.05] = np.nan
    ok = np.isfinite(flux)
    w = np.where(ok, 1 / np.sqrt(0.01**2 + cannon.scatter**2), 0.0)
    f = np.where(ok, flux, 0.0)
    z0 = rng.uniform(-1, 1, (40, 2))
    z, cost = least_squares_batch(z0, cannon.theta, cannon.terms, f, w)
    same = 0
    for i in range(40):
        ref = least_squares(
            lambda x, f=f[i], w=w[i]: (design_matrix(x, cannon.terms) @ cannon.theta - f)[0] * w, z0[i], xtol=1e-12, ftol=1e-12
        )
        assert cost[i] <= ref.cost * (1 + 1e-9)  # never a worse fit
        if cost[i] >= ref.cost * (1 - 1e-6):  # the same minimum (a polynomial has several: logg^2)
            np.testing.assert_allclose(z[i], ref.x, atol=1e-4)  # 1e-4 of a label's spread
            same += 1
    assert same >= 36
