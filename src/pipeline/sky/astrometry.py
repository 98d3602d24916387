"""Gaia DR3 astrometry of mock stars: coordinates, source ids, parallax errors and zero point.

The observed parallax is  true + Z_gdr3 + extra(G) + noise : Z_gdr3 is the Lindegren et al.
(2021) zero point from the ``gaiadr3-zeropoint`` package for the star's G, nu_eff (or
pseudocolour), ecliptic latitude and solution type; ``extra`` is the additional G-dependent
term of Leung et al. (2023) (eq. 7 of Leung & Bovy). A catalog that subtracts both recovers
the true parallax on average.
"""

from __future__ import annotations

import warnings

import numpy as np

SOURCE_ID_HEALPIX_FACTOR = 2**35  # source_id // 2^35 is the level-12 NESTED HEALPix index


def gdr3_zero_point_mas(g_mag, nu_eff, pseudocolour, ecl_lat_deg, params_solved):
    """Lindegren et al. (2021) zero point (mas) for 5/6-parameter solutions; NaN for others.

    Outside the calibration's range the package extrapolates (and warns); those values are used
    as they are, as a user applying the package would.
    """
    from zero_point import zpt

    zpt.load_tables()
    out = np.full(np.shape(g_mag), np.nan)
    ok = np.isin(params_solved, (31, 95)) & np.isfinite(g_mag)
    if ok.any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out[ok] = zpt.get_zpt(
                np.asarray(g_mag, float)[ok],
                np.asarray(nu_eff, float)[ok],
                np.asarray(pseudocolour, float)[ok],
                np.asarray(ecl_lat_deg, float)[ok],
                np.asarray(params_solved)[ok],
                _warnings=True,
            )
    return out


def parallax_error_mas(g_mag):
    """Gaia DR3 parallax uncertainty (mas) for a well-behaved source: ~13 uas at G < 13, 30 at G = 15, 80 at G = 17.

    sigma = sqrt(40 + 800 z + 30 z^2) uas with z = 10^(0.4 (max(G, 13) - 15)) (Gaia science performance).
    """
    z = 10.0 ** (0.4 * (np.maximum(np.asarray(g_mag, float), 13.0) - 15.0))
    return np.sqrt(40.0 + 800.0 * z + 30.0 * z**2) / 1000.0


def nu_eff_from_bprp(bp_rp):
    """Effective wavenumber (1/um) used in the EDR3 astrometry: 1.76 - (1.61/pi) atan(0.531 C), clipped to [1.24, 1.72]."""
    return np.clip(1.76 - (1.61 / np.pi) * np.arctan(0.531 * np.asarray(bp_rp, float)), 1.24, 1.72)


def draw_ruwe(n, rng, binary_fraction=0.09):
    """RUWE: log-normal core around 1.0 and an unresolved-binary tail above 1.4."""
    ruwe = rng.lognormal(np.log(1.01), 0.06, n)
    binary = rng.random(n) < binary_fraction
    ruwe[binary] = np.exp(rng.uniform(np.log(1.4), np.log(8.0), binary.sum()))
    return ruwe


def draw_params_solved(g_mag, rng):
    """31 (5-parameter) for most, 95 (6-parameter) more often when faint, 3 (2-parameter) for a few."""
    g = np.asarray(g_mag, float)
    p95 = np.clip(0.02 + 0.06 * (g - 14.0) / 4.0, 0.02, 0.15)
    p3 = np.where(g > 19.0, 0.3, 0.004)
    u = rng.random(g.size)
    return np.where(u < p3, 3, np.where(u < p3 + p95, 95, 31)).astype(np.int16)


def galactic_to_icrs(l_deg, b_deg):
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    c = SkyCoord(l=np.asarray(l_deg) * u.deg, b=np.asarray(b_deg) * u.deg, frame="galactic").icrs
    return c.ra.deg, c.dec.deg


def ecliptic_latitude_deg(ra_deg, dec_deg):
    import astropy.units as u
    from astropy.coordinates import BarycentricMeanEcliptic, SkyCoord

    c = SkyCoord(ra=np.asarray(ra_deg) * u.deg, dec=np.asarray(dec_deg) * u.deg, frame="icrs")
    return c.transform_to(BarycentricMeanEcliptic()).lat.deg


def make_source_ids(ra_deg, dec_deg, rng):
    """Unique Gaia-like source ids: level-12 NESTED HEALPix index x 2^35 + a running number."""
    import healpy

    hpx = healpy.ang2pix(4096, np.radians(90.0 - np.asarray(dec_deg)), np.radians(np.asarray(ra_deg)), nest=True).astype(np.int64)
    ids = hpx * SOURCE_ID_HEALPIX_FACTOR + rng.integers(1, 2**31, hpx.size, dtype=np.int64)
    while np.unique(ids).size < ids.size:  # vanishingly rare
        _, first = np.unique(ids, return_index=True)
        dup = np.setdiff1d(np.arange(ids.size), first)
        ids[dup] = hpx[dup] * SOURCE_ID_HEALPIX_FACTOR + rng.integers(1, 2**31, dup.size, dtype=np.int64)
    return ids


def twomass_designation(ra_deg, dec_deg):
    """APOGEE_ID in the 2MASS style '2MHHMMSSss+DDMMSSs'."""
    ra_h = np.asarray(ra_deg) / 15.0
    hh = np.floor(ra_h).astype(int)
    mm = np.floor((ra_h - hh) * 60).astype(int)
    ss = ((ra_h - hh) * 60 - mm) * 60
    sign = np.where(np.asarray(dec_deg) < 0, "-", "+")
    ad = np.abs(dec_deg)
    dd = np.floor(ad).astype(int)
    dm = np.floor((ad - dd) * 60).astype(int)
    ds = ((ad - dd) * 60 - dm) * 60
    return np.array(
        [
            f"2M{h:02d}{m:02d}{int(s * 100):04d}{sg}{d:02d}{n:02d}{int(x * 10):03d}"
            for h, m, s, sg, d, n, x in zip(hh, mm, ss, sign, dd, dm, ds)
        ]
    )
