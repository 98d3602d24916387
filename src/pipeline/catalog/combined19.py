"""The 3D dust map of Bovy et al. (2016) as mwdust ships it: ``combined19/combine19.h5``.

For every HEALPix pixel (NESTED ordering, one nside) the file holds the cumulative E(B-V) on the
SFD scale along the line of sight at the 120 distance moduli 4, 4.125, ..., 18.875, which
``mwdust.Combined19`` interpolates linearly (a k=1 spline): a ``pixel_info`` table with
``healpix_index`` and ``nside`` and a ``best_fit`` array of shape (n_pixels, 120). This module
reads (and, for the mock sky, writes) that layout and evaluates it as mwdust does, vectorised.
"""

from __future__ import annotations

import h5py
import numpy as np

DISTMODS = np.linspace(4.0, 18.875, 120)  # mwdust Combined19 grid


def distance_kpc_from_distmod(distmod):
    return 10.0 ** (np.asarray(distmod, float) / 5.0 - 2.0)


def write_combined19(path, healpix_index, nside: int, best_fit):
    """Write ``combine19.h5`` as mwdust.Combined19 reads it."""
    info = np.zeros(healpix_index.size, dtype=[("healpix_index", "<i8"), ("nside", "<i8")])
    info["healpix_index"] = healpix_index
    info["nside"] = nside
    with h5py.File(path, "w") as f:
        f.create_dataset("pixel_info", data=info)
        f.create_dataset("best_fit", data=np.asarray(best_fit, dtype="<f8"), compression="gzip", compression_opts=4, shuffle=True)


class Combined19Map:
    """Vectorised evaluation of a single-nside Combined19-layout map, identical to mwdust's.

    mwdust fits ``InterpolatedUnivariateSpline(distmods, best_fit[pix], k=1)`` per pixel, i.e.
    linear interpolation in distance modulus with linear extrapolation beyond the grid.
    """

    def __init__(self, healpix_index, nside: int, best_fit):
        self.nside = int(nside)
        order = np.argsort(healpix_index)
        self._pix = np.asarray(healpix_index)[order]
        self._fit = np.asarray(best_fit)[order]

    @classmethod
    def from_file(cls, path):
        with h5py.File(path, "r") as f:
            info = f["pixel_info"][:]
            fit = f["best_fit"][:]
        nsides = np.unique(info["nside"])
        if nsides.size != 1:
            raise ValueError(f"{path}: Combined19Map reads single-nside maps only, found nsides {nsides.tolist()}")
        return cls(info["healpix_index"], int(nsides[0]), fit)

    def rows(self, l_deg, b_deg):
        import healpy

        pix = healpy.ang2pix(self.nside, np.radians(90.0 - np.asarray(b_deg, float)), np.radians(np.asarray(l_deg, float)), nest=True)
        return np.searchsorted(self._pix, pix)

    def ebv_at_rows(self, rows, d_kpc):
        """E(B-V)_SFD for map rows and distances (same shape, or rows (n,) with d (n, m))."""
        return ebv_from_rows(self._fit, DISTMODS, rows, d_kpc)

    def ebv(self, l_deg, b_deg, d_kpc):
        """E(B-V)_SFD at (l, b, d) — what ``mwdust.Combined19()(l, b, d)`` returns."""
        return self.ebv_at_rows(self.rows(l_deg, b_deg), d_kpc)


def ebv_from_rows(best_fit, distmods, rows, d_kpc):
    """Linear interpolation in distance modulus (linear extrapolation beyond the grid), as mwdust's k=1 spline.

    ``best_fit`` is (n_pixels, n_distmods) on the regular grid ``distmods``; ``rows`` index it
    (-1 for a direction the map does not cover gives NaN); ``d_kpc`` has the shape of ``rows``,
    or (n, m) for rows of shape (n,).
    """
    distmods = np.asarray(distmods, float)
    dm = 5.0 * np.log10(np.asarray(d_kpc, float)) + 10.0
    step = distmods[1] - distmods[0]
    x = (dm - distmods[0]) / step
    j = np.clip(np.floor(x).astype(np.intp), 0, distmods.size - 2)
    t = x - j
    r = np.asarray(rows)
    if dm.ndim == 2 and r.ndim == 1:
        r = r[:, None]
    flat = np.ascontiguousarray(best_fit).ravel()
    k = np.where(r >= 0, r, 0) * best_fit.shape[1] + j  # gathers from the flat map are cheaper than 2-D fancy indexing
    lo = flat.take(k)
    out = lo + (flat.take(k + 1) - lo) * t
    return np.where(r >= 0, out, np.nan)
