"""Build the mock sky: every raw survey file a user would download, plus the truth.

``build_sky(SkyConfig(...), out_dir)`` writes into ``out_dir``:

- ``allStar.fits``                     APOGEE DR17 allStar subset (HDU 1)
- ``gaia_source.parquet``              Gaia DR3 gaia_source subset (APOGEE stars and faint neighbours)
- ``xp_continuous/*.parquet``          Gaia DR3 XP continuous partitions (or ``*.csv``, archive layout)
- ``dust/combined19/combine19.h5``     the 3D dust map in mwdust's Combined19 layout
- ``distmass.fits``                    DistMass-like masses and ages of giants
- ``truth.parquet``                    the true value of everything (for validation only)
- ``manifest.json``                    configuration, seed, counts and timings

Files appear whole or not at all: everything is written to a temporary sibling directory first.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..catalog.combined19 import Combined19Map, write_combined19
from ..gaia import photometry
from ..gaia import xp as gaia_xp
from ..settings import from_dict
from . import astrometry, sed, xp
from .dust import DustModel, build_map
from .population import draw_population, sample_distances
from .writers import atomic_directory, commit_directory, write_fits_table, write_parquet, write_xp_partitions

log = logging.getLogger(__name__)

EBV_TRUE_PER_SFD = 0.884  # Schlafly & Finkbeiner (2011), eq. 10 of Leung & Bovy
R_V = 3.1
XP_G_LIMIT = 17.65  # Gaia DR3 published XP continuous spectra for G < 17.65
GAIA_G_LIMIT = 20.9
XP_SOLUTION_ID = 4545469030156206080  # DR3 XP solution id, as in the archive
STARFLAG_BITS = {0: "BAD_PIXELS", 2: "BRIGHT_NEIGHBOR", 3: "VERY_BRIGHT_NEIGHBOR", 4: "LOW_SNR", 9: "PERSIST_HIGH",
                 11: "PERSIST_LOW", 16: "SUSPECT_RV_COMBINATION", 17: "SUSPECT_BROAD_LINES", 19: "RV_WARN"}
ASPCAPFLAG_BITS = {0: "TEFF_WARN", 1: "LOGG_WARN", 2: "VMICRO_WARN", 3: "M_H_WARN", 6: "N_M_WARN", 7: "STAR_WARN",
                   8: "CHI2_WARN", 16: "TEFF_BAD", 17: "LOGG_BAD", 19: "M_H_BAD", 23: "STAR_BAD", 24: "CHI2_BAD"}
M_H_BAD_BIT, STAR_BAD_BIT = 19, 23


@dataclass
class SkyConfig:
    """What the sky rule needs: size, seed, dust-map resolution and the XP partitioning."""

    n_stars: int = 50_000
    seed: int = 42
    nside: int = 64
    xp_partitions: int = 8
    xp_format: str = "parquet"  # or "csv" (the archive's CSV layout; for small skies)
    dust: DustModel = field(default_factory=DustModel)
    chunk: int = 10_000

    @classmethod
    def from_dict(cls, d):
        return from_dict(cls, d, "sky")


def extinction_per_av(wavelength_nm):
    """A_lambda / A_V of the Fitzpatrick (1999) R_V = 3.1 curve (the ``extinction`` package)."""
    import extinction

    return extinction.fitzpatrick99(np.asarray(wavelength_nm, float) * 10.0, 1.0, R_V)


def model_spectrum(teff, logg, m_h, radius_rsun, distance_pc, ebv_true):
    """The model spectrum (W m^-2 nm^-1, stars x gaiaxpy default grid) that a mock star's XP encodes."""
    grid, _, _ = gaia_xp.xp_basis()
    flux = sed.surface_flux_xp(grid, teff, logg, m_h) * sed.dilution(radius_rsun, distance_pc)[:, None]
    a_v = R_V * np.asarray(ebv_true, float)
    return flux * 10.0 ** (-0.4 * a_v[:, None] * extinction_per_av(grid)[None, :])


def _spawn(seed: int, names):
    seqs = np.random.SeedSequence(seed).spawn(len(names))
    return {n: np.random.default_rng(s) for n, s in zip(names, seqs)}


def _flags(bits_on: dict[int, np.ndarray], names: dict[int, str], n: int):
    value = np.zeros(n, dtype=np.int64)
    for bit, on in bits_on.items():
        value |= np.where(on, np.int64(1) << bit, 0)
    text = np.array([",".join(names[b] for b in sorted(names) if v >> b & 1) for v in value])
    return value, text


def _progress(step: str, t0: float):
    log.info("sky: %-28s done at %6.1f s", step, time.perf_counter() - t0)


def build_sky(cfg: SkyConfig, out_dir: str | Path) -> dict:
    """Generate the mock sky into ``out_dir``; returns the manifest."""
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    rng = _spawn(cfg.seed, ["pop", "dist", "xp", "phot", "astro", "apogee", "dup", "archive", "neigh"])
    n = cfg.n_stars

    # 1. dust map
    hpx, best_fit = build_map(cfg.dust, cfg.nside)
    dmap = Combined19Map(hpx, cfg.nside, best_fit)
    _progress(f"dust map (nside {cfg.nside})", t0)

    # 2. population and luminosities
    pop = draw_population(n, rng["pop"])
    radius = sed.radius_rsun(pop["mass"], pop["logg"])
    tm_grids, _ = sed.twomass_grid()
    ext_2mass = {band: extinction_per_av(g) for band, g in tm_grids.items()}
    abs_2mass = sed.twomass_abs_mags(pop["teff"], radius)
    a_h_per_av = float(np.mean(ext_2mass["H"]))
    _progress("population", t0)

    # 3. distances along each line of sight, with the dust in front of the star
    rows = dmap.rows(pop["l"], pop["b"])

    def a_h_of_d(d_grid):
        ebv = dmap.ebv_at_rows(rows, np.broadcast_to(d_grid, (n, d_grid.size)))
        return R_V * EBV_TRUE_PER_SFD * np.clip(ebv, 0, None) * a_h_per_av

    dist_kpc, h_lim = sample_distances(pop, abs_2mass["H"], a_h_of_d, rng["dist"])
    ebv_c19 = dmap.ebv_at_rows(rows, dist_kpc)
    ebv_true = EBV_TRUE_PER_SFD * np.clip(ebv_c19, 0, None)
    a_v = R_V * ebv_true
    dist_pc = dist_kpc * 1000.0
    _progress("distances and extinction", t0)

    # 4. XP spectra and Gaia photometry from the same reddened SED
    coeffs = {b: np.empty((n, gaia_xp.N_COEFF)) for b in gaia_xp.BANDS}
    for start in range(0, n, cfg.chunk):
        sl = slice(start, min(n, start + cfg.chunk))
        spec = model_spectrum(pop["teff"][sl], pop["logg"][sl], pop["m_h"][sl], radius[sl], dist_pc[sl], ebv_true[sl])
        c = xp.project_spectrum(spec)
        for b in gaia_xp.BANDS:
            coeffs[b][sl] = c[b]
    gaia_true = gaia_xp.synthetic_gaia_mags(coeffs)
    g_true, bp_true, rp_true = gaia_true.T
    observed = xp.observe_xp(coeffs, rng["xp"])
    _progress("XP projection", t0)

    # 5. 2MASS
    mod = 5.0 * np.log10(dist_pc / 10.0)
    tm_true = {b: m + mod for b, m in sed.twomass_abs_mags(pop["teff"], radius, ext_2mass, a_v).items()}
    r = rng["phot"]
    tm_obs, tm_err = {}, {}
    has_2mass = r.random(n) > 0.006
    for b, m in tm_true.items():
        err = np.sqrt(0.018**2 + (0.02 * 10 ** (0.4 * (m - 14.0))) ** 2)
        tm_err[b] = err
        tm_obs[b] = m + err * r.standard_normal(n)

    # 6. Gaia photometry with flux-dependent errors
    def flux_over_error(mag, zp, a, b_floor):
        flux = 10 ** ((zp - mag) / 2.5)
        return 1.0 / np.sqrt(a / flux + b_floor**2)

    g_foe = flux_over_error(g_true, photometry.G_ZEROPOINT_MAG, 0.004, 3e-4)
    bp_foe = flux_over_error(bp_true, photometry.BP_ZEROPOINT_MAG, 0.12, 1.2e-3)
    rp_foe = flux_over_error(rp_true, photometry.RP_ZEROPOINT_MAG, 0.08, 1.0e-3)
    g_obs = g_true + 1.0857 / g_foe * r.standard_normal(n)
    bp_obs = bp_true + 1.0857 / bp_foe * r.standard_normal(n)
    rp_obs = rp_true + 1.0857 / rp_foe * r.standard_normal(n)
    f_bp = 10 ** ((photometry.BP_ZEROPOINT_MAG - bp_obs) / 2.5)
    f_rp = 10 ** ((photometry.RP_ZEROPOINT_MAG - rp_obs) / 2.5)
    excess = (f_bp + f_rp) / photometry.g_flux_e_per_s(g_obs)
    crowded = (np.abs(pop["b"]) < 6) & (np.abs(((pop["l"] + 180) % 360) - 180) < 40) & (r.random(n) < 0.12)
    excess = excess * np.where(crowded, np.exp(r.uniform(0.1, 1.0, n)), 1.0)
    _progress("photometry", t0)

    # 7. astrometry
    ra = astrometry.galactic_to_icrs(pop["l"], pop["b"])
    ra, dec = ra
    ecl_lat = astrometry.ecliptic_latitude_deg(ra, dec)
    ra_ = rng["astro"]
    in_gaia = (g_obs < GAIA_G_LIMIT) & (ra_.random(n) > 0.003)
    source_id = astrometry.make_source_ids(ra, dec, ra_)
    params_solved = astrometry.draw_params_solved(g_obs, ra_)
    ruwe = astrometry.draw_ruwe(n, ra_)
    bprp_obs = bp_obs - rp_obs
    nu_eff = np.where(params_solved == 31, astrometry.nu_eff_from_bprp(bprp_obs), np.nan)
    pseudocolour = np.where(params_solved == 95, np.clip(astrometry.nu_eff_from_bprp(bprp_obs) + ra_.normal(0, 0.03, n), 1.24, 1.72), np.nan)
    zp_gdr3 = astrometry.gdr3_zero_point_mas(g_obs, nu_eff, pseudocolour, ecl_lat, params_solved)
    zp_extra = photometry.extra_zero_point_mas(g_obs)  # the term the catalog removes
    zp_total = np.nan_to_num(zp_gdr3) + zp_extra
    plx_err = astrometry.parallax_error_mas(g_obs) * np.where(params_solved == 95, 1.3, 1.0) * np.where(ruwe > 1.4, np.sqrt(ruwe), 1.0)
    plx_true = 1.0 / dist_kpc
    plx = plx_true + zp_total + plx_err * ra_.standard_normal(n)
    # binaries: photocentre wobble biases the parallax beyond its formal error
    wobble = ruwe > 1.4
    plx[wobble] += plx_err[wobble] * ra_.normal(0, ruwe[wobble] - 1.0)
    two_param = params_solved == 3
    plx[two_param] = np.nan
    plx_err[two_param] = np.nan
    _progress("astrometry", t0)

    # 8. which stars have XP
    # DR3 published XP for G < 17.65, and not for every such source (quality filtering upstream)
    has_xp = in_gaia & (g_obs < XP_G_LIMIT) & (ra_.random(n) > 0.06)
    missing_bp = has_xp & (ra_.random(n) < 0.002)

    # 9. APOGEE labels, flags, SNR
    ra_ap = rng["apogee"]
    snr = np.clip(110.0 * 10 ** (-0.2 * (tm_obs["H"] - 11.0)) * ra_ap.lognormal(0, 0.35, n), 5, 2000)
    teff_err = 9.0 + 25.0 * (80.0 / snr) ** 0.7 + 4.0 * np.clip((pop["teff"] - 5500) / 1000, 0, None) ** 2
    logg_err = 0.02 + 0.04 * (80.0 / snr) ** 0.7
    m_h_err = 0.008 + 0.02 * (80.0 / snr) ** 0.7 * (1 + np.clip(-pop["m_h"], 0, None))
    # APOGEE's scatter against truth is larger than its formal errors (systematics)
    teff_obs = pop["teff"] + ra_ap.normal(0, 1, n) * np.hypot(teff_err, 35.0)
    logg_obs = pop["logg"] + ra_ap.normal(0, 1, n) * np.hypot(logg_err, 0.05)
    m_h_obs = pop["m_h"] + ra_ap.normal(0, 1, n) * np.hypot(m_h_err, 0.03)
    sb = {
        0: ra_ap.random(n) < 0.025, 2: ra_ap.random(n) < 0.04, 3: ra_ap.random(n) < 0.015, 4: snr < 30,
        9: ra_ap.random(n) < 0.05, 11: ra_ap.random(n) < 0.04, 16: ra_ap.random(n) < 0.02,
        17: (pop["evol_class"] == "hot") | (ra_ap.random(n) < 0.01), 19: ra_ap.random(n) < 0.01,
    }
    starflag, starflags = _flags(sb, STARFLAG_BITS, n)
    extreme = (pop["teff"] > 7000) | (pop["teff"] < 3500) | (pop["logg"] < 0.9)
    star_bad = extreme & (ra_ap.random(n) < 0.8) | (ra_ap.random(n) < 0.08) | (snr < 20)
    m_h_bad = (ra_ap.random(n) < 0.02) | ((pop["m_h"] < -2.0) & (ra_ap.random(n) < 0.5))
    ab = {
        0: ra_ap.random(n) < 0.08, 1: ra_ap.random(n) < 0.10, 2: ra_ap.random(n) < 0.15, 3: m_h_bad | (ra_ap.random(n) < 0.03),
        6: ra_ap.random(n) < 0.3, 7: star_bad | (ra_ap.random(n) < 0.1), 8: ra_ap.random(n) < 0.05,
        16: star_bad & (ra_ap.random(n) < 0.3), 17: star_bad & (ra_ap.random(n) < 0.3), 19: m_h_bad, 23: star_bad,
        24: star_bad & (ra_ap.random(n) < 0.2),
    }
    aspcapflag, aspcapflags = _flags(ab, ASPCAPFLAG_BITS, n)
    aspcap_failed = ra_ap.random(n) < 0.02
    labels_good = (starflag == 0) & ~(aspcapflag >> M_H_BAD_BIT & 1).astype(bool) & ~(aspcapflag >> STAR_BAD_BIT & 1).astype(bool) & ~aspcap_failed
    apogee_id = astrometry.twomass_designation(ra, dec)
    gaia_id_in_allstar = np.where(in_gaia & (ra_ap.random(n) > 0.015), source_id, 0)
    _progress("APOGEE labels and flags", t0)

    def nan_if(x, cond):
        return np.where(cond, np.nan, x).astype(np.float32)

    missing_tm = lambda band: np.where(has_2mass, tm_obs[band], 99.999).astype(np.float32)  # noqa: E731
    missing_tm_err = lambda band: np.where(has_2mass, tm_err[band], 99.999).astype(np.float32)  # noqa: E731
    allstar = {
        "APOGEE_ID": apogee_id.astype("S30"),
        "TELESCOPE": np.where(pop["b"] < -20, "lco25m", "apo25m").astype("S6"),
        "FIELD": np.array([f"F{f:04d}_{int(lc):03d}{int(bc):+03d}" for f, lc, bc in zip(pop["field"], pop["field_l"][pop["field"]], pop["field_b"][pop["field"]])]).astype("S20"),
        "RA": ra, "DEC": dec, "GLON": pop["l"], "GLAT": pop["b"],
        "J": missing_tm("J"), "J_ERR": missing_tm_err("J"), "H": missing_tm("H"), "H_ERR": missing_tm_err("H"),
        "K": missing_tm("K"), "K_ERR": missing_tm_err("K"),
        "SNR": snr.astype(np.float32), "STARFLAG": starflag, "STARFLAGS": starflags.astype("S160"),
        "ASPCAPFLAG": aspcapflag, "ASPCAPFLAGS": aspcapflags.astype("S200"), "EXTRATARG": np.zeros(n, np.int32),
        "TEFF": nan_if(teff_obs, aspcap_failed), "TEFF_ERR": nan_if(teff_err, aspcap_failed),
        "LOGG": nan_if(logg_obs, aspcap_failed), "LOGG_ERR": nan_if(logg_err, aspcap_failed),
        "M_H": nan_if(m_h_obs, aspcap_failed), "M_H_ERR": nan_if(m_h_err, aspcap_failed),
        "GAIAEDR3_SOURCE_ID": gaia_id_in_allstar.astype(np.int64),
        "GAIAEDR3_PHOT_G_MEAN_MAG": np.where(in_gaia, g_obs, np.nan).astype(np.float32),
        "GAIAEDR3_PARALLAX": np.where(in_gaia, plx, np.nan).astype(np.float32),
    }
    # repeat observations: same star from the other telescope or another field, lower SNR, EXTRATARG bit 4
    rd = rng["dup"]
    dup = np.nonzero(rd.random(n) < 0.02)[0]
    extra = {k: np.asarray(v)[dup].copy() for k, v in allstar.items()}
    extra["SNR"] = (extra["SNR"] * rd.uniform(0.25, 0.8, dup.size)).astype(np.float32)
    extra["TELESCOPE"] = np.where(extra["TELESCOPE"] == b"apo25m", b"lco25m", b"apo25m").astype("S6")
    extra["EXTRATARG"] = np.full(dup.size, 16, np.int32)
    for col, scale in (("TEFF", 60.0), ("LOGG", 0.1), ("M_H", 0.05)):
        extra[col] = (extra[col] + rd.normal(0, scale, dup.size)).astype(np.float32)
    order = rd.permutation(n + dup.size)
    allstar = {k: np.concatenate([np.asarray(v), extra[k]])[order] for k, v in allstar.items()}

    # 10. Gaia tables
    g_rows = np.nonzero(in_gaia)[0]
    rn = rng["neigh"]
    n_nb = int(0.03 * g_rows.size)
    host = rn.choice(g_rows, n_nb, replace=False)
    sep_deg = rn.uniform(1.5, 8.0, n_nb) / 3600.0
    pa_ = rn.uniform(0, 2 * np.pi, n_nb)
    nb_dec = dec[host] + sep_deg * np.cos(pa_)
    nb_ra = (ra[host] + sep_deg * np.sin(pa_) / np.cos(np.radians(dec[host]))) % 360
    nb_g = rn.uniform(18.0, 20.8, n_nb)
    nb_bprp = rn.uniform(0.5, 2.5, n_nb)
    nb_params = astrometry.draw_params_solved(nb_g, rn)
    nb_plx_err = astrometry.parallax_error_mas(nb_g)
    nb_nu = np.where(nb_params == 31, astrometry.nu_eff_from_bprp(nb_bprp), np.nan)
    nb_pc = np.where(nb_params == 95, astrometry.nu_eff_from_bprp(nb_bprp), np.nan)
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    nb_gal = SkyCoord(ra=nb_ra * u.deg, dec=nb_dec * u.deg).galactic
    nb_plx = rn.exponential(0.3, n_nb) + nb_plx_err * rn.standard_normal(n_nb)
    gaia_source = {
        "source_id": np.concatenate([source_id[g_rows], astrometry.make_source_ids(nb_ra, nb_dec, rn)]),
        "ra": np.concatenate([ra[g_rows], nb_ra]),
        "dec": np.concatenate([dec[g_rows], nb_dec]),
        "l": np.concatenate([pop["l"][g_rows], nb_gal.l.deg]),
        "b": np.concatenate([pop["b"][g_rows], nb_gal.b.deg]),
        "parallax": np.concatenate([plx[g_rows], np.where(nb_params == 3, np.nan, nb_plx)]),
        "parallax_error": np.concatenate([plx_err[g_rows], np.where(nb_params == 3, np.nan, nb_plx_err)]).astype(np.float32),
        "ruwe": np.concatenate([ruwe[g_rows], astrometry.draw_ruwe(n_nb, rn)]).astype(np.float32),
        "phot_g_mean_mag": np.concatenate([g_obs[g_rows], nb_g]).astype(np.float32),
        "phot_bp_mean_mag": np.concatenate([bp_obs[g_rows], nb_g + 0.4 * nb_bprp]).astype(np.float32),
        "phot_rp_mean_mag": np.concatenate([rp_obs[g_rows], nb_g - 0.6 * nb_bprp]).astype(np.float32),
        "phot_g_mean_flux_over_error": np.concatenate([g_foe[g_rows], np.full(n_nb, 150.0)]).astype(np.float32),
        "phot_bp_mean_flux_over_error": np.concatenate([bp_foe[g_rows], np.full(n_nb, 12.0)]).astype(np.float32),
        "phot_rp_mean_flux_over_error": np.concatenate([rp_foe[g_rows], np.full(n_nb, 15.0)]).astype(np.float32),
        "bp_rp": np.concatenate([bprp_obs[g_rows], nb_bprp]).astype(np.float32),
        "phot_bp_rp_excess_factor": np.concatenate([excess[g_rows], rn.uniform(1.2, 2.5, n_nb)]).astype(np.float32),
        "nu_eff_used_in_astrometry": np.concatenate([nu_eff[g_rows], nb_nu]).astype(np.float32),
        "pseudocolour": np.concatenate([pseudocolour[g_rows], nb_pc]).astype(np.float32),
        "ecl_lat": np.concatenate([ecl_lat[g_rows], astrometry.ecliptic_latitude_deg(nb_ra, nb_dec)]),
        "astrometric_params_solved": np.concatenate([params_solved[g_rows], nb_params]).astype(np.int16),
        "has_xp_continuous": np.concatenate([has_xp[g_rows], np.zeros(n_nb, bool)]),
    }
    perm = rn.permutation(gaia_source["source_id"].size)
    gaia_source = {k: v[perm] for k, v in gaia_source.items()}

    x_rows = np.nonzero(has_xp)[0]
    ra_x = rng["archive"]
    xp_table = {"source_id": source_id[x_rows], "solution_id": np.full(x_rows.size, XP_SOLUTION_ID, np.int64)}
    for i, b in enumerate(gaia_xp.BANDS):
        noisy, err, nrel = (a[x_rows] for a in observed[b])
        gone = missing_bp[x_rows] if b == "bp" else np.zeros(x_rows.size, bool)
        n_meas = ra_x.integers(600, 6000, x_rows.size)
        std = ra_x.lognormal(np.log(1.05), 0.08, x_rows.size)
        xp_table.update({
            f"{b}_basis_function_id": np.full(x_rows.size, 56 + i, np.int16),
            f"{b}_degrees_of_freedom": (n_meas - 55).astype(np.int16),
            f"{b}_n_parameters": np.full(x_rows.size, 55, np.int16),
            f"{b}_n_measurements": n_meas.astype(np.int16),
            f"{b}_n_rejected_measurements": ra_x.poisson(0.004 * n_meas).astype(np.int16),
            f"{b}_standard_deviation": std.astype(np.float32),
            f"{b}_chi_squared": (std**2 * (n_meas - 55)).astype(np.float32),
            f"{b}_coefficients": np.where(gone[:, None], np.nan, noisy),
            f"{b}_coefficient_errors": np.where(gone[:, None], np.nan, err),
            f"{b}_coefficient_correlations": np.where(gone[:, None], np.nan, np.zeros((x_rows.size, 55 * 54 // 2), np.float32)),
            f"{b}_n_relevant_bases": nrel.astype(np.int16),
            f"{b}_relative_shrinking": np.ones(x_rows.size, np.float32),
        })
    _progress("survey tables", t0)

    # 11. DistMass-like catalogue of giants
    giants = np.isin(pop["evol_class"], ("rgb", "rc")) & (pop["logg"] < 3.6) & labels_good
    gi = np.nonzero(giants)[0]
    rg = rng["apogee"]
    mass_err = pop["mass"][gi] * rg.uniform(0.06, 0.12, gi.size)
    age_err = pop["age"][gi] * rg.uniform(0.18, 0.35, gi.size)
    dist_err = dist_kpc[gi] * rg.uniform(0.03, 0.12, gi.size)
    distmass = {
        "APOGEE_ID": apogee_id[gi].astype("S30"),
        "MASS": (pop["mass"][gi] + mass_err * rg.standard_normal(gi.size)).astype(np.float32), "MASS_ERR": mass_err.astype(np.float32),
        "AGE": np.clip(pop["age"][gi] + age_err * rg.standard_normal(gi.size), 0.05, None).astype(np.float32), "AGE_ERR": age_err.astype(np.float32),
        "DIST": (dist_kpc[gi] + dist_err * rg.standard_normal(gi.size)).astype(np.float32), "DIST_ERR": dist_err.astype(np.float32),
        "EVSTATE": np.where(pop["evol_class"][gi] == "rc", 2, 1).astype(np.int16),
    }

    truth = {
        "apogee_id": apogee_id, "source_id": np.where(in_gaia, source_id, 0), "ra": ra, "dec": dec, "l": pop["l"], "b": pop["b"],
        "distance_kpc": dist_kpc, "parallax_true_mas": plx_true, "zp_gdr3_mas": zp_gdr3, "zp_extra_mas": zp_extra,
        "teff": pop["teff"], "logg": pop["logg"], "m_h": pop["m_h"], "mass": pop["mass"], "age": pop["age"], "radius": radius,
        "component": pop["component"], "evol_class": pop["evol_class"], "field_type": pop["field_type"], "h_limit": h_lim,
        "ebv_c19": ebv_c19, "ebv_true": ebv_true, "a_v": a_v,
        "g_true": g_true, "bp_true": bp_true, "rp_true": rp_true, "j_true": tm_true["J"], "h_true": tm_true["H"], "k_true": tm_true["K"],
        "in_gaia": in_gaia, "has_xp": has_xp, "missing_bp": missing_bp, "has_2mass": has_2mass, "labels_good": labels_good,
        "aspcap_failed": aspcap_failed, "in_distmass": giants, "n_allstar_rows": 1 + np.isin(np.arange(n), dup),
        "bp_coefficients_true": list(coeffs["bp"].astype(np.float32)), "rp_coefficients_true": list(coeffs["rp"].astype(np.float32)),
    }

    counts = {
        "stars": n, "allstar_rows": int(n + dup.size), "gaia_source_rows": int(gaia_source["source_id"].size),
        "xp_rows": int(x_rows.size), "with_xp": int(has_xp.sum()), "with_good_labels": int(labels_good.sum()),
        "xp_without_good_labels": int((has_xp & ~labels_good).sum()), "good_labels_without_xp": int((labels_good & ~has_xp).sum()),
        "not_in_gaia": int((~in_gaia).sum()), "without_gaia_id_in_allstar": int((gaia_id_in_allstar == 0).sum()),
        "without_2mass": int((~has_2mass).sum()), "distmass_rows": int(gi.size), "gaia_neighbours": n_nb,
    }

    tmp = atomic_directory(out_dir)
    try:
        write_fits_table(tmp / "allStar.fits", allstar, hdu_name="ALLSTAR", header={"ORIGIN": "stellar-fm-pipeline mock sky", "SKYSEED": cfg.seed})
        write_parquet(tmp / "gaia_source.parquet", gaia_source, metadata={"origin": "mock sky", "seed": cfg.seed})
        write_xp_partitions(tmp / "xp_continuous", xp_table, cfg.xp_partitions, cfg.xp_format)
        (tmp / "dust" / "combined19").mkdir(parents=True)
        write_combined19(tmp / "dust" / "combined19" / "combine19.h5", hpx, cfg.nside, best_fit)
        write_fits_table(tmp / "distmass.fits", distmass, hdu_name="DISTMASS")
        write_parquet(tmp / "truth.parquet", truth, metadata={"note": "true values; read only by validation, never by training"})
        manifest = {"config": _jsonable(asdict(cfg)), "counts": counts}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        commit_directory(tmp, out_dir)
    except BaseException:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _progress("written", t0)
    return manifest


def _jsonable(d):
    return json.loads(json.dumps(d, default=lambda o: o.item() if hasattr(o, "item") else str(o)))
