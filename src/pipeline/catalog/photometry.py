"""Colours, G-band normalisation of XP and the pseudo-luminosity, each with its uncertainty."""

from __future__ import annotations

import numpy as np

from ..gaia.photometry import SIGMA_BP0_MAG, SIGMA_RP0_MAG, g_flux_e_per_s

MAG_PER_FRAC = 2.5 / np.log(10.0)  # 1.0857: d(mag) = 1.0857 d(flux)/flux


def bp_rp_error_mag(bp_flux_over_error, rp_flux_over_error):
    """Uncertainty of BP-RP: each band's 1.0857/(flux/error) with its zero-point floor, in quadrature."""
    s_bp = MAG_PER_FRAC / np.asarray(bp_flux_over_error, float)
    s_rp = MAG_PER_FRAC / np.asarray(rp_flux_over_error, float)
    return np.sqrt(s_bp**2 + SIGMA_BP0_MAG**2 + s_rp**2 + SIGMA_RP0_MAG**2)


def colour_and_error(m1, e1, m2, e2):
    """m1 - m2 and its uncertainty sqrt(e1^2 + e2^2) (2MASS J-H, J-K)."""
    return np.asarray(m1, float) - np.asarray(m2, float), np.hypot(e1, e2)


def pseudo_luminosity(parallax_mas, parallax_error_mas, g_mag):
    """g_fakemag = parallax 10^(G/5) (eq. 9) and its error |sigma_plx / plx| g_fakemag = sigma_plx 10^(G/5)."""
    scale = 10.0 ** (0.2 * np.asarray(g_mag, float))
    return np.asarray(parallax_mas, float) * scale, np.abs(np.asarray(parallax_error_mas, float)) * scale


def normalise_xp(coeffs, errors, g_mag):
    """XP coefficients and errors divided by the G-band flux (stars x 55)."""
    f = g_flux_e_per_s(g_mag)[:, None]
    return coeffs / f, errors / f


def relevancy_mask(n_relevant, n_coeff: int = 55):
    """True where a coefficient is relevant: index < n_relevant, and the last two copy the third-last.

    Gaia never marks the last two coefficients relevant; following the paper, they take the
    relevancy of the third-last one of the same band.
    """
    n = np.asarray(n_relevant, int)[:, None]
    k = np.arange(n_coeff)[None, :]
    mask = k < n
    mask[:, -2:] = mask[:, [-3]]
    return mask
