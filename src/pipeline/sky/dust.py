"""An analytic 3D Milky Way dust model, written in mwdust's Combined19 file layout.

The dust density is an exponential disc (scale length ``h_r_kpc``, scale height ``h_z_kpc``,
flaring outwards) modulated by a few seeded 3D density waves that give it clouds and lanes, and,
optionally, the Sun inside a dust-free cavity (the Local Bubble, radius ``bubble_radius_kpc``) whose swept-up
dust sits in its wall (``bubble_wall_kpc``): the column towards a star beyond the wall is the
disc's own, and towards a star inside the cavity it is 0, as the real 3D maps read towards nearby
stars (Green et al. 2019), which the catalog stores as the paper's ln E(B-V) floor of -7.
The map stores, for every HEALPix pixel (NESTED ordering, a single nside) the cumulative
E(B-V) on the SFD scale along the line of sight at the 120 distance moduli 4, 4.125, ...,
18.875 that mwdust's ``Combined19`` interpolates (linearly, k=1) — exactly the layout of
``combine19.h5``: a ``pixel_info`` table with ``healpix_index`` and ``nside`` and a
``best_fit`` array of shape (n_pixels, 120).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..catalog.combined19 import DISTMODS, distance_kpc_from_distmod

R0_KPC = 8.2  # Sun's Galactocentric radius
Z_SUN_KPC = 0.0208


@dataclass(frozen=True)
class DustModel:
    """Parameters of the analytic dust disc (E(B-V)_SFD per kpc in the solar neighbourhood)."""

    ebv_per_kpc: float = 0.38
    h_r_kpc: float = 3.2
    h_z_kpc: float = 0.09
    flare_kpc: float = 9.0  # h_z grows as exp((R - R0) / flare)
    n_waves: int = 10
    wave_amplitude: float = 0.7
    seed: int = 19
    bubble_radius_kpc: float = 0.0  # a Local Bubble: no dust within this heliocentric distance (0: none)
    bubble_wall_kpc: float = 0.05  # the wall holding the cavity's dust: the column ramps up across it

    def waves(self):
        rng = np.random.default_rng(self.seed)
        k_dir = rng.normal(size=(self.n_waves, 3))
        k_dir /= np.linalg.norm(k_dir, axis=1, keepdims=True)
        k_dir[:, 2] *= 0.3  # structures are flattened like the disc
        wavelength = rng.uniform(0.4, 3.0, self.n_waves)  # kpc
        phase = rng.uniform(0, 2 * np.pi, self.n_waves)
        return k_dir * (2 * np.pi / wavelength)[:, None], phase

    def density(self, x_kpc, y_kpc, z_kpc):
        """dE(B-V)_SFD/ds in mag/kpc at Galactocentric Cartesian positions (Sun at x = R0)."""
        r = np.hypot(x_kpc, y_kpc)
        h_z = self.h_z_kpc * np.exp((r - R0_KPC) / self.flare_kpc)
        base = self.ebv_per_kpc * np.exp(-(r - R0_KPC) / self.h_r_kpc) * np.exp(-np.abs(z_kpc) / h_z)
        base *= self.h_z_kpc / h_z  # keep the column roughly constant as the disc flares
        if self.n_waves == 0:
            return base
        k, phase = self.waves()
        mod = np.zeros_like(base)
        for kk, ph in zip(k, phase):
            mod += np.sin(kk[0] * x_kpc + kk[1] * y_kpc + kk[2] * z_kpc + ph)
        mod = 1.0 + self.wave_amplitude * mod / np.sqrt(self.n_waves / 2.0)
        return base * np.clip(mod, 0.05, None) ** 1.5


def galactocentric_xyz(l_deg, b_deg, d_kpc):
    """Heliocentric (l, b, d) to Galactocentric Cartesian kpc, Sun at (R0, 0, z_sun)."""
    l = np.radians(l_deg)
    b = np.radians(b_deg)
    x = R0_KPC - d_kpc * np.cos(b) * np.cos(l)
    y = d_kpc * np.cos(b) * np.sin(l)
    z = d_kpc * np.sin(b) + Z_SUN_KPC
    return x, y, z


def line_of_sight_ebv(model: DustModel, l_deg, b_deg, distances_kpc, n_steps: int = 600):
    """Cumulative E(B-V)_SFD from the Sun to each of ``distances_kpc`` along each (l, b).

    Returns (n_directions, n_distances). Trapezoidal integration on a log-spaced grid from 1 pc.
    """
    s = np.concatenate([[0.0], np.geomspace(1e-3, distances_kpc.max(), n_steps)])
    l = np.asarray(l_deg, float)[:, None]
    b = np.asarray(b_deg, float)[:, None]
    x, y, z = galactocentric_xyz(l, b, s[None, :])
    rho = model.density(x, y, z)
    cum = np.concatenate([np.zeros((rho.shape[0], 1)), np.cumsum(0.5 * (rho[:, 1:] + rho[:, :-1]) * np.diff(s)[None, :], axis=1)], axis=1)
    idx = np.searchsorted(s, distances_kpc)
    idx = np.clip(idx, 1, s.size - 1)
    w = (distances_kpc - s[idx - 1]) / (s[idx] - s[idx - 1])
    return (cum[:, idx - 1] * (1 - w) + cum[:, idx] * w) * local_bubble_factor(model, distances_kpc)


def local_bubble_factor(model: DustModel, distances_kpc):
    """The fraction of the disc's column in front of a star that the Local Bubble leaves: 0 inside the
    cavity, rising linearly across the wall (where the cavity's dust now sits), 1 beyond it."""
    d = np.asarray(distances_kpc, float)
    if model.bubble_radius_kpc <= 0:
        return np.ones_like(d)
    return np.clip((d - model.bubble_radius_kpc) / max(model.bubble_wall_kpc, 1e-9), 0.0, 1.0)


def build_map(model: DustModel, nside: int, chunk: int = 4096):
    """HEALPix (NESTED) map of cumulative E(B-V)_SFD at the Combined19 distance moduli.

    Returns (healpix_index, best_fit) with best_fit of shape (12 nside^2, 120), float64.
    """
    import healpy

    npix = 12 * nside * nside
    pix = np.arange(npix)
    theta, phi = healpy.pix2ang(nside, pix, nest=True)
    l_deg = np.degrees(phi)
    b_deg = 90.0 - np.degrees(theta)
    d = distance_kpc_from_distmod(DISTMODS)
    best_fit = np.empty((npix, DISTMODS.size))
    for start in range(0, npix, chunk):
        sl = slice(start, start + chunk)
        best_fit[sl] = line_of_sight_ebv(model, l_deg[sl], b_deg[sl], d)
    return pix, best_fit
