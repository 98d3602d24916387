"""Gaia DR3 parallax zero point: Lindegren et al. (2021) plus the extra term of eq. 7."""

from __future__ import annotations

import warnings

import numpy as np

from ..gaia.photometry import extra_zero_point_mas

FLAG_OK, FLAG_NO_SOLUTION, FLAG_EXTRAPOLATED = 0, 1, 2


def parallax_offset_mas(g_mag, nu_eff, pseudocolour, ecl_lat_deg, params_solved):
    """Total offset Z_gdr3 + extra (mas) and a flag per star.

    5- and 6-parameter solutions get the ``gaiadr3-zeropoint`` value (numpy arrays only); outside
    its calibration (6 < G < 21, 1.1 < nu_eff < 1.9, 1.24 < pseudocolour < 1.72) the package
    extrapolates and the star is flagged ``FLAG_EXTRAPOLATED``. Other solutions (2-parameter)
    get no correction and ``FLAG_NO_SOLUTION``: never a crash.
    """
    from zero_point import zpt

    zpt.load_tables()
    g = np.asarray(g_mag, float)
    nu = np.asarray(nu_eff, float)
    pc = np.asarray(pseudocolour, float)
    beta = np.asarray(ecl_lat_deg, float)
    sol = np.nan_to_num(np.asarray(params_solved, float), nan=0).astype(int)
    offset = np.zeros(g.shape)
    flag = np.full(g.shape, FLAG_NO_SOLUTION, dtype=np.int8)
    ok = np.isin(sol, (31, 95)) & np.isfinite(g) & np.isfinite(beta) & np.where(sol == 31, np.isfinite(nu), np.isfinite(pc))
    if ok.any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            z = zpt.get_zpt(g[ok], nu[ok], pc[ok], beta[ok], sol[ok], _warnings=True)
        offset[ok] = np.nan_to_num(z)
        inside = (g[ok] > 6) & (g[ok] < 21) & np.where(sol[ok] == 31, (nu[ok] > 1.1) & (nu[ok] < 1.9), (pc[ok] > 1.24) & (pc[ok] < 1.72))
        flag[ok] = np.where(inside & np.isfinite(z), FLAG_OK, FLAG_EXTRAPOLATED)
    offset = np.where(flag == FLAG_NO_SOLUTION, 0.0, offset + extra_zero_point_mas(g))
    return offset, flag


def corrected_parallax_mas(parallax_mas, offset_mas):
    """parallax - offset (Lindegren et al. 2021: parallax_corrected = parallax_catalogue - zero_point)."""
    return np.asarray(parallax_mas, float) - np.asarray(offset_mas, float)
