"""Gaia DR3 constants and formulae shared by the mock sky (which injects) and the catalog (which corrects)."""

from __future__ import annotations

import numpy as np

# Riello et al. (2021) photometric zero points (Vega, e-/s) and their uncertainties (mag).
G_ZEROPOINT_MAG = 25.6873668671
BP_ZEROPOINT_MAG = 25.3385422158
RP_ZEROPOINT_MAG = 24.7478955012
SIGMA_G0_MAG, SIGMA_BP0_MAG, SIGMA_RP0_MAG = 0.0027553202, 0.0027901700, 0.0037793818


def g_flux_e_per_s(g_mag):
    """G-band flux F_G in e-/s from eq. 8 of Leung & Bovy: 2.5 log10 F_G = G0 - G."""
    return 10.0 ** ((G_ZEROPOINT_MAG - np.asarray(g_mag, float)) / 2.5)


def extra_zero_point_mas(g_mag):
    """Eq. 7's extra parallax offset (mas): 0 for G <= 13, 5 uas (G - 13) for 13 < G <= 17, 20 uas beyond."""
    g = np.asarray(g_mag, float)
    return np.where(g <= 13.0, 0.0, np.where(g <= 17.0, 0.005 * (g - 13.0), 0.020))
