"""The Cannon (Ness et al. 2015): the spectra expert SpectraFM's Table 1 is read against.

A data-driven generative model: each pixel's flux is a polynomial in the standardised labels,
    flux_p(z) = theta_p . terms(z),   z = (labels - mean) / std,
fit by least squares over the training stars (every pixel at once), with a per-pixel intrinsic
scatter s_p from the fit's residuals. A star's labels are those whose model spectrum fits its
observed one best (weights 1 / (err^2 + s_p^2), bad pixels left out), started from the best of
the model's spectra at the training labels and a ridge regression of the labels on the flux (a
polynomial has more than one minimum). Not our model: a fit any astronomer can redo, which tells
how much of a label a set of spectra carries (the role AstroNN plays in the paper's Table 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations_with_replacement

import numpy as np


def polynomial_terms(n_labels: int, order: int) -> list[tuple[int, ...]]:
    """Every monomial of the labels up to ``order``: () is the constant, (0,) z_0, (0, 1) z_0 z_1, ..."""
    return [c for d in range(order + 1) for c in combinations_with_replacement(range(n_labels), d)]


def design_matrix(z, terms) -> np.ndarray:
    """(stars, terms) of standardised labels z (stars, labels)."""
    z = np.atleast_2d(np.asarray(z, float))
    return np.stack([np.prod(z[:, list(t)], axis=1) if t else np.ones(len(z)) for t in terms], axis=1)


@dataclass
class Cannon:
    theta: np.ndarray  # (terms, pixels)
    scatter: np.ndarray  # (pixels,) intrinsic scatter of the model, flux units
    mean: np.ndarray  # (labels,) label standardisation
    std: np.ndarray
    terms: list
    ridge: np.ndarray  # (pixels, labels): the starting guess, z = (flux - flux_mean) @ ridge + z_mean
    flux_mean: np.ndarray  # (pixels,)
    z_mean: np.ndarray  # (labels,)
    grid_z: np.ndarray  # (training stars, labels): starting points ...
    grid_flux: np.ndarray  # (training stars, pixels): ... and the model's spectra there

    def infer(self, flux, flux_err) -> np.ndarray:
        """Labels (stars, labels) of spectra (stars, pixels); NaN pixels are left out."""
        from scipy.optimize import least_squares

        flux = np.asarray(flux, float)
        err = np.broadcast_to(np.asarray(flux_err, float), flux.shape)
        start = np.where(np.isfinite(flux), flux - self.flux_mean, 0.0) @ self.ridge + self.z_mean
        out = np.full((len(flux), self.mean.size), np.nan)
        for i in range(len(flux)):
            ok = np.isfinite(flux[i]) & np.isfinite(err[i])
            if ok.sum() <= len(self.terms):
                continue
            w = 1.0 / np.sqrt(err[i, ok] ** 2 + self.scatter[ok] ** 2)
            theta = self.theta[:, ok]

            def residual(z, f=flux[i, ok], w=w, theta=theta):
                return (design_matrix(z, self.terms) @ theta - f)[0] * w

            nearest = self.grid_z[np.argmin((((self.grid_flux[:, ok] - flux[i, ok]) * w) ** 2).sum(axis=1))]
            fits = [least_squares(residual, z0) for z0 in (nearest, np.clip(start[i], -4, 4))]
            out[i] = min(fits, key=lambda f: f.cost).x
        return out * self.std + self.mean


def fit_cannon(labels, flux, order: int = 3, ridge_alpha: float = 1.0, refits: int = 3) -> Cannon:
    """The Cannon of ``order`` fit to training spectra (stars, pixels) with their labels (stars, labels).
    Bad (NaN) training pixels are filled with the model's own prediction, refit ``refits`` times
    (first with the pixel's median): the fit then rests on the good pixels alone."""
    labels = np.asarray(labels, float)
    flux = np.asarray(flux, float)
    if len(labels) != len(flux):
        raise ValueError(f"the Cannon needs one label row per spectrum: {len(labels)} labels, {len(flux)} spectra")
    mean, std = labels.mean(0), labels.std(0)
    std = np.where(std > 0, std, 1.0)
    z = (labels - mean) / std
    terms = polynomial_terms(labels.shape[1], order)
    if len(flux) <= 2 * len(terms):
        raise ValueError(
            f"the Cannon of order {order} has {len(terms)} terms per pixel: it needs more than {2 * len(terms)} training spectra, got {len(flux)}"
        )
    bad = ~np.isfinite(flux)
    filled = np.where(bad, np.nanmedian(flux, axis=0), flux)
    a = design_matrix(z, terms)
    for _ in range(refits + 1):
        theta, *_ = np.linalg.lstsq(a, filled, rcond=None)
        filled[bad] = (a @ theta)[bad]
    scatter = np.sqrt(np.mean((filled - a @ theta) ** 2, axis=0))
    flux_mean, z_mean = filled.mean(0), z.mean(0)
    x = filled - flux_mean  # ridge in its dual form: stars < pixels
    ridge = x.T @ np.linalg.solve(x @ x.T + ridge_alpha * np.eye(len(x)), z - z_mean)
    return Cannon(theta, scatter, mean, std, terms, ridge, flux_mean, z_mean, z, (a @ theta).astype(np.float32))
