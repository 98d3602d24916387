"""The Cannon (Ness et al. 2015): the spectra expert SpectraFM's Table 1 is read against.

A data-driven generative model: each pixel's flux is a polynomial in the standardised labels,
    flux_p(z) = theta_p . terms(z),   z = (labels - mean) / std,
fit by least squares over the training stars (every pixel at once), with a per-pixel intrinsic
scatter s_p from the fit's residuals. A star's labels are those whose model spectrum fits its
observed one best (weights 1 / (err^2 + s_p^2), bad pixels left out), started from the best of
the model's spectra at the training labels and a ridge regression of the labels on the flux (a
polynomial has more than one minimum). Every star's fit runs at once: a Levenberg-Marquardt iteration on
the stars as one batch, with the polynomial's exact Jacobian. Not our model: a fit any astronomer can redo, which tells
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


def design_gradient(z, terms) -> np.ndarray:
    """(stars, terms, labels): the derivative of each term by each standardised label."""
    z = np.atleast_2d(np.asarray(z, float))
    out = np.zeros((len(z), len(terms), z.shape[1]))
    for k, t in enumerate(terms):
        for j in set(t):  # d/dz_j of z_j^m * rest = m z_j^(m-1) * rest
            rest = list(t)
            rest.remove(j)
            out[:, k, j] = t.count(j) * (np.prod(z[:, rest], axis=1) if rest else 1.0)
    return out


def least_squares_batch(z0, theta, terms, flux, w, iterations: int = 200, tolerance: float = 1e-9):
    """Minimise 0.5 sum_p (w_p (terms(z) . theta_p - f_p))^2 for every star at once by Levenberg-Marquardt
    (Marquardt's scaling of the damping by the normal matrix's diagonal). z0 (stars, labels), flux and
    w (stars, pixels; w 0 leaves a pixel out). Returns (z, cost) per star: each stops when its cost's
    relative change falls below ``tolerance``."""
    z = np.array(z0, float)
    lam = np.full(len(z), 1e-3)

    def cost_of(z, i):
        return 0.5 * (((design_matrix(z, terms) @ theta - flux[i]) * w[i]) ** 2).sum(axis=1)

    cost = cost_of(z, slice(None))
    active = np.ones(len(z), bool)
    eye = np.eye(z.shape[1])
    for _ in range(iterations):
        i = np.flatnonzero(active)
        if i.size == 0:
            break
        r = (design_matrix(z[i], terms) @ theta - flux[i]) * w[i]  # (n, pixels)
        n, labels = len(i), z.shape[1]
        da = design_gradient(z[i], terms).transpose(0, 2, 1).reshape(n * labels, -1)  # (n labels, terms)
        jac = (da @ theta).reshape(n, labels, -1) * w[i][:, None, :]  # (n, labels, pixels)
        g = (jac @ r[..., None])[..., 0]
        h = jac @ jac.transpose(0, 2, 1)
        damped = h + lam[i][:, None, None] * (h * eye + 1e-12 * eye)
        step = -np.linalg.solve(damped, g[..., None])[..., 0]
        trial = z[i] + step
        new = cost_of(trial, i)
        better = new < cost[i]
        converged = np.abs(cost[i] - np.where(better, new, cost[i])) <= tolerance * np.maximum(cost[i], 1e-300)
        converged &= better | (lam[i] > 1e10)  # a rejected step only ends a fit whose damping has run out
        z[i[better]], cost[i[better]] = trial[better], new[better]
        lam[i] = np.where(better, lam[i] / 3, lam[i] * 4)
        active[i[converged]] = False
    return z, cost


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

    def infer(self, flux, flux_err, chunk: int = 256) -> np.ndarray:
        """Labels (stars, labels) of spectra (stars, pixels); NaN pixels are left out. Each star is fit
        from two starts (the nearest training spectrum's labels and the ridge guess); the better fit wins."""
        flux = np.asarray(flux, float)
        err = np.broadcast_to(np.asarray(flux_err, float), flux.shape)
        ok = np.isfinite(flux) & np.isfinite(err)
        w = np.where(ok, 1.0 / np.sqrt(np.where(ok, err, 1.0) ** 2 + self.scatter**2), 0.0)
        f = np.where(ok, flux, 0.0)
        start = np.clip(np.where(np.isfinite(flux), flux - self.flux_mean, 0.0) @ self.ridge + self.z_mean, -4, 4)
        out = np.full((len(flux), self.mean.size), np.nan)
        grid = self.grid_flux.astype(float)
        grid_sq = (grid**2).T
        for s in range(0, len(flux), chunk):
            c = slice(s, s + chunk)
            w2 = w[c] ** 2
            # the nearest training spectrum in the weighted metric: sum_p w^2 (g - f)^2, expanded
            dist = w2 @ grid_sq - 2 * (w2 * f[c]) @ grid.T
            nearest = self.grid_z[np.argmin(dist, axis=1)]
            fits = [least_squares_batch(z0, self.theta, self.terms, f[c], w[c]) for z0 in (nearest, start[c])]
            best = np.where((fits[0][1] <= fits[1][1])[:, None], fits[0][0], fits[1][0])
            out[c] = np.where((ok[c].sum(axis=1) > len(self.terms))[:, None], best, np.nan)
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
