"""Build the mock sky: every raw survey file a user would download, plus the truth.

``build_sky(SkyConfig(...), out_dir)`` writes into ``out_dir``:

- ``allStar.fits``                     APOGEE DR17 allStar subset (HDU 1)
- ``gaia_source.parquet``              Gaia DR3 gaia_source subset (APOGEE stars and faint neighbours)
- ``xp_continuous/*.parquet``          Gaia DR3 XP continuous partitions (or ``*.csv``, archive layout)
- ``dust/combined19/combine19.h5``     the 3D dust map in mwdust's Combined19 layout
- ``distmass.fits``                    DistMass-like masses and ages of giants
- ``truth.parquet``                    the true value of everything (for validation only)
- ``manifest.json``                    configuration, seed, counts and timings

Files appear whole or not at all (``io.atomic``), the manifest last.
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
from ..io.atomic import atomic_path, write_json
from ..settings import from_dict
from . import astrometry, sed, xp
from .dust import DustModel, build_map
from .population import draw_population, sample_distances
from .writers import write_fits_table, write_parquet, write_xp_partitions

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
    """Generate the mock sky into ``out_dir``; returns the manifest. One function per step below,
    each drawing from its own random stream (``_spawn``), so a step's draws never shift another's."""
    t0 = time.perf_counter()
    rng = _spawn(cfg.seed, ["pop", "dist", "xp", "phot", "astro", "apogee", "dup", "archive", "neigh"])
    hpx, best_fit, dmap = dust_map(cfg)
    _progress(f"dust map (nside {cfg.nside})", t0)
    pop = stellar_population(cfg.n_stars, rng["pop"])
    _progress("population", t0)
    los = distances_and_extinction(pop, dmap, rng["dist"])
    _progress("distances and extinction", t0)
    xp_true = xp_spectra(pop, los, cfg.chunk, rng["xp"])
    _progress("XP projection", t0)
    tm = twomass_photometry(pop, los, rng["phot"])
    phot = gaia_photometry(xp_true, pop, rng["phot"])
    _progress("photometry", t0)
    astro = gaia_astrometry(pop, phot, los, rng["astro"])
    _progress("astrometry", t0)
    apogee = apogee_labels(pop, tm, astro, rng["apogee"])
    allstar, dup = allstar_table(pop, tm, phot, astro, apogee, rng["dup"])
    _progress("APOGEE labels and flags", t0)
    gaia_source, n_neighbours = gaia_source_table(pop, phot, astro, rng["neigh"])
    xp_table = xp_continuous_table(astro, xp_true, rng["archive"])
    _progress("survey tables", t0)
    distmass, giants = distmass_table(pop, los, apogee, rng["apogee"])
    truth = truth_table(pop, los, xp_true, tm, phot, astro, apogee, giants, dup)
    n = cfg.n_stars
    counts = {
        "stars": n, "allstar_rows": int(n + dup.size), "gaia_source_rows": int(gaia_source["source_id"].size),
        "xp_rows": int(xp_table["source_id"].size), "with_xp": int(astro["has_xp"].sum()),
        "with_good_labels": int(apogee["labels_good"].sum()),
        "xp_without_good_labels": int((astro["has_xp"] & ~apogee["labels_good"]).sum()),
        "good_labels_without_xp": int((apogee["labels_good"] & ~astro["has_xp"]).sum()),
        "not_in_gaia": int((~astro["in_gaia"]).sum()), "without_gaia_id_in_allstar": int((apogee["gaia_id_in_allstar"] == 0).sum()),
        "without_2mass": int((~tm["has_2mass"]).sum()), "distmass_rows": int(giants.sum()), "gaia_neighbours": n_neighbours,
    }
    manifest = {"config": _jsonable(asdict(cfg)), "counts": counts}
    write_sky(Path(out_dir), cfg, allstar, gaia_source, xp_table, (hpx, best_fit), distmass, truth, manifest)
    _progress("written", t0)
    return manifest


# -- 1. the dust map ------------------------------------------------------------------------------
def dust_map(cfg: SkyConfig):
    """(HEALPix pixels, cumulative E(B-V)_SFD per pixel and distance modulus, the map to evaluate)."""
    hpx, best_fit = build_map(cfg.dust, cfg.nside)
    return hpx, best_fit, Combined19Map(hpx, cfg.nside, best_fit)


# -- 2. the stars ---------------------------------------------------------------------------------
def stellar_population(n: int, rng) -> dict:
    """Draw the stars (population.draw_population) and their radii (Rsun) and 2MASS absolute magnitudes."""
    pop = draw_population(n, rng)
    pop["radius_rsun"] = sed.radius_rsun(pop["mass"], pop["logg"])
    tm_grids, _ = sed.twomass_grid()
    pop["ext_2mass"] = {band: extinction_per_av(g) for band, g in tm_grids.items()}  # A_band / A_V along each filter
    pop["abs_2mass"] = sed.twomass_abs_mags(pop["teff"], pop["radius_rsun"])
    return pop


# -- 3. distances along each line of sight, with the dust in front of the star ---------------------
def distances_and_extinction(pop: dict, dmap: Combined19Map, rng) -> dict:
    """Distances (kpc) drawn within APOGEE's H limit given the dust in front of each star, and the
    star's E(B-V) on the map's (SFD) scale, the true E(B-V) (x 0.884) and A_V (x R_V)."""
    n = pop["teff"].size
    rows = dmap.rows(pop["l"], pop["b"])
    a_h_per_av = float(np.mean(pop["ext_2mass"]["H"]))

    def a_h_of_d(d_grid):
        ebv = dmap.ebv_at_rows(rows, np.broadcast_to(d_grid, (n, d_grid.size)))
        return R_V * EBV_TRUE_PER_SFD * np.clip(ebv, 0, None) * a_h_per_av

    dist_kpc, h_lim = sample_distances(pop, pop["abs_2mass"]["H"], a_h_of_d, rng)
    ebv_c19 = dmap.ebv_at_rows(rows, dist_kpc)
    ebv_true = EBV_TRUE_PER_SFD * np.clip(ebv_c19, 0, None)
    return {"distance_kpc": dist_kpc, "h_limit": h_lim, "ebv_c19": ebv_c19, "ebv_true": ebv_true, "a_v": R_V * ebv_true}


# -- 4. XP spectra and Gaia's true photometry from the same reddened SED --------------------------
def xp_spectra(pop: dict, los: dict, chunk: int, rng) -> dict:
    """True XP coefficients of each star's reddened SED, its true G, BP, RP (Vega mag) from them,
    and the observed coefficients (xp.observe_xp: noisy, errors, relevant bases)."""
    n = pop["teff"].size
    dist_pc = los["distance_kpc"] * 1000.0
    coeffs = {b: np.empty((n, gaia_xp.N_COEFF)) for b in gaia_xp.BANDS}
    for start in range(0, n, chunk):
        sl = slice(start, min(n, start + chunk))
        spec = model_spectrum(pop["teff"][sl], pop["logg"][sl], pop["m_h"][sl], pop["radius_rsun"][sl], dist_pc[sl], los["ebv_true"][sl])
        c = xp.project_spectrum(spec)
        for b in gaia_xp.BANDS:
            coeffs[b][sl] = c[b]
    g, bp, rp = gaia_xp.synthetic_gaia_mags(coeffs).T
    return {"coeffs": coeffs, "g_true": g, "bp_true": bp, "rp_true": rp, "observed": xp.observe_xp(coeffs, rng)}


# -- 5. 2MASS ---------------------------------------------------------------------------------------
def twomass_photometry(pop: dict, los: dict, rng) -> dict:
    """True and observed J, H, K (Vega mag) with errors of 0.018 mag plus photon noise (0.02 at
    14 mag); 0.6% of stars lack 2MASS photometry."""
    n = pop["teff"].size
    mod = 5.0 * np.log10(los["distance_kpc"] * 1000.0 / 10.0)
    true = {b: m + mod for b, m in sed.twomass_abs_mags(pop["teff"], pop["radius_rsun"], pop["ext_2mass"], los["a_v"]).items()}
    has_2mass = rng.random(n) > 0.006
    obs, err = {}, {}
    for b, m in true.items():
        err[b] = np.sqrt(0.018**2 + (0.02 * 10 ** (0.4 * (m - 14.0))) ** 2)
        obs[b] = m + err[b] * rng.standard_normal(n)
    return {"true": true, "obs": obs, "err": err, "has_2mass": has_2mass}


# -- 6. Gaia photometry with flux-dependent errors ------------------------------------------------
def flux_over_error(mag, zp_mag, a, floor):
    """Gaia's flux / error: photon noise a / flux (flux in e-/s of zero point ``zp_mag``) and a floor."""
    flux = 10 ** ((zp_mag - mag) / 2.5)
    return 1.0 / np.sqrt(a / flux + floor**2)


def gaia_photometry(xp_true: dict, pop: dict, rng) -> dict:
    """Observed G, BP, RP (mag) and their flux/error, and the BP/RP flux excess factor, raised in
    12% of stars of crowded bulge fields (|b| < 6, |l| < 40)."""
    n = pop["teff"].size
    foe = {"g": flux_over_error(xp_true["g_true"], photometry.G_ZEROPOINT_MAG, 0.004, 3e-4),
           "bp": flux_over_error(xp_true["bp_true"], photometry.BP_ZEROPOINT_MAG, 0.12, 1.2e-3),
           "rp": flux_over_error(xp_true["rp_true"], photometry.RP_ZEROPOINT_MAG, 0.08, 1.0e-3)}
    obs = {b: xp_true[f"{b}_true"] + 1.0857 / foe[b] * rng.standard_normal(n) for b in ("g", "bp", "rp")}
    f_bp = 10 ** ((photometry.BP_ZEROPOINT_MAG - obs["bp"]) / 2.5)
    f_rp = 10 ** ((photometry.RP_ZEROPOINT_MAG - obs["rp"]) / 2.5)
    excess = (f_bp + f_rp) / photometry.g_flux_e_per_s(obs["g"])
    crowded = (np.abs(pop["b"]) < 6) & (np.abs(((pop["l"] + 180) % 360) - 180) < 40) & (rng.random(n) < 0.12)
    excess = excess * np.where(crowded, np.exp(rng.uniform(0.1, 1.0, n)), 1.0)
    return {"g_obs": obs["g"], "bp_obs": obs["bp"], "rp_obs": obs["rp"], "foe": foe, "excess": excess}


# -- 7. astrometry, and which stars Gaia has, with XP ---------------------------------------------
def gaia_astrometry(pop: dict, phot: dict, los: dict, rng) -> dict:
    """Positions, source ids, the astrometric solution (5/6-parameter or 2-parameter), RUWE, the
    parallax zero point of Lindegren et al. (2021) plus the extra term the catalog removes (eq. 7),
    observed parallaxes (binaries wobble beyond their formal error), and which stars are in Gaia and
    have XP spectra (DR3 published XP for G < 17.65, not for every such source)."""
    n = pop["teff"].size
    g_obs = phot["g_obs"]
    ra, dec = astrometry.galactic_to_icrs(pop["l"], pop["b"])
    ecl_lat = astrometry.ecliptic_latitude_deg(ra, dec)
    in_gaia = (g_obs < GAIA_G_LIMIT) & (rng.random(n) > 0.003)
    source_id = astrometry.make_source_ids(ra, dec, rng)
    params_solved = astrometry.draw_params_solved(g_obs, rng)
    ruwe = astrometry.draw_ruwe(n, rng)
    bprp_obs = phot["bp_obs"] - phot["rp_obs"]
    nu_eff = np.where(params_solved == 31, astrometry.nu_eff_from_bprp(bprp_obs), np.nan)
    pseudocolour = np.where(params_solved == 95, np.clip(astrometry.nu_eff_from_bprp(bprp_obs) + rng.normal(0, 0.03, n), 1.24, 1.72), np.nan)
    zp_gdr3 = astrometry.gdr3_zero_point_mas(g_obs, nu_eff, pseudocolour, ecl_lat, params_solved)
    zp_extra = photometry.extra_zero_point_mas(g_obs)  # the term the catalog removes
    plx_err = astrometry.parallax_error_mas(g_obs) * np.where(params_solved == 95, 1.3, 1.0) * np.where(ruwe > 1.4, np.sqrt(ruwe), 1.0)
    plx_true = 1.0 / los["distance_kpc"]
    zp_total = np.nan_to_num(zp_gdr3) + zp_extra
    plx = plx_true + zp_total + plx_err * rng.standard_normal(n)
    wobble = ruwe > 1.4  # binaries: photocentre wobble biases the parallax beyond its formal error
    plx[wobble] += plx_err[wobble] * rng.normal(0, ruwe[wobble] - 1.0)
    two_param = params_solved == 3
    plx[two_param] = np.nan
    plx_err[two_param] = np.nan
    has_xp = in_gaia & (g_obs < XP_G_LIMIT) & (rng.random(n) > 0.06)
    missing_bp = has_xp & (rng.random(n) < 0.002)
    return {"ra": ra, "dec": dec, "ecl_lat": ecl_lat, "in_gaia": in_gaia, "source_id": source_id, "params_solved": params_solved,
            "ruwe": ruwe, "bprp_obs": bprp_obs, "nu_eff": nu_eff, "pseudocolour": pseudocolour, "zp_gdr3": zp_gdr3,
            "zp_extra": zp_extra, "parallax": plx, "parallax_error": plx_err, "parallax_true": plx_true,
            "has_xp": has_xp, "missing_bp": missing_bp}


# -- 8. APOGEE: labels, their errors, flags, SNR ------------------------------------------------
def apogee_labels(pop: dict, tm: dict, astro: dict, rng) -> dict:
    """ASPCAP-like Teff, logg, [M/H] with errors that shrink with SNR (which follows H), scattered
    about the truth by more than the formal errors (systematics); STARFLAG and ASPCAPFLAG bits; 2%
    of stars without ASPCAP results; ``labels_good`` where the catalog will keep the labels."""
    n = pop["teff"].size
    snr = np.clip(110.0 * 10 ** (-0.2 * (tm["obs"]["H"] - 11.0)) * rng.lognormal(0, 0.35, n), 5, 2000)
    teff_err = 9.0 + 25.0 * (80.0 / snr) ** 0.7 + 4.0 * np.clip((pop["teff"] - 5500) / 1000, 0, None) ** 2
    logg_err = 0.02 + 0.04 * (80.0 / snr) ** 0.7
    m_h_err = 0.008 + 0.02 * (80.0 / snr) ** 0.7 * (1 + np.clip(-pop["m_h"], 0, None))
    teff_obs = pop["teff"] + rng.normal(0, 1, n) * np.hypot(teff_err, 35.0)
    logg_obs = pop["logg"] + rng.normal(0, 1, n) * np.hypot(logg_err, 0.05)
    m_h_obs = pop["m_h"] + rng.normal(0, 1, n) * np.hypot(m_h_err, 0.03)
    sb = {
        0: rng.random(n) < 0.025, 2: rng.random(n) < 0.04, 3: rng.random(n) < 0.015, 4: snr < 30,
        9: rng.random(n) < 0.05, 11: rng.random(n) < 0.04, 16: rng.random(n) < 0.02,
        17: (pop["evol_class"] == "hot") | (rng.random(n) < 0.01), 19: rng.random(n) < 0.01,
    }
    starflag, starflags = _flags(sb, STARFLAG_BITS, n)
    extreme = (pop["teff"] > 7000) | (pop["teff"] < 3500) | (pop["logg"] < 0.9)
    star_bad = extreme & (rng.random(n) < 0.8) | (rng.random(n) < 0.08) | (snr < 20)
    m_h_bad = (rng.random(n) < 0.02) | ((pop["m_h"] < -2.0) & (rng.random(n) < 0.5))
    ab = {
        0: rng.random(n) < 0.08, 1: rng.random(n) < 0.10, 2: rng.random(n) < 0.15, 3: m_h_bad | (rng.random(n) < 0.03),
        6: rng.random(n) < 0.3, 7: star_bad | (rng.random(n) < 0.1), 8: rng.random(n) < 0.05,
        16: star_bad & (rng.random(n) < 0.3), 17: star_bad & (rng.random(n) < 0.3), 19: m_h_bad, 23: star_bad,
        24: star_bad & (rng.random(n) < 0.2),
    }
    aspcapflag, aspcapflags = _flags(ab, ASPCAPFLAG_BITS, n)
    aspcap_failed = rng.random(n) < 0.02
    labels_good = (starflag == 0) & ~(aspcapflag >> M_H_BAD_BIT & 1).astype(bool) & ~(aspcapflag >> STAR_BAD_BIT & 1).astype(bool) & ~aspcap_failed
    gaia_id_in_allstar = np.where(astro["in_gaia"] & (rng.random(n) > 0.015), astro["source_id"], 0)
    return {"snr": snr, "teff": teff_obs, "teff_err": teff_err, "logg": logg_obs, "logg_err": logg_err, "m_h": m_h_obs,
            "m_h_err": m_h_err, "starflag": starflag, "starflags": starflags, "aspcapflag": aspcapflag, "aspcapflags": aspcapflags,
            "aspcap_failed": aspcap_failed, "labels_good": labels_good, "apogee_id": astrometry.twomass_designation(astro["ra"], astro["dec"]),
            "gaia_id_in_allstar": gaia_id_in_allstar}


def allstar_table(pop: dict, tm: dict, phot: dict, astro: dict, apogee: dict, rng):
    """The allStar columns (missing 2MASS as 99.999, failed ASPCAP as NaN), with 2% of stars observed
    twice (the other telescope or another field, lower SNR, EXTRATARG bit 4), rows shuffled.
    Returns (columns, the rows that were repeated)."""
    n = pop["teff"].size
    failed, has_2mass = apogee["aspcap_failed"], tm["has_2mass"]

    def nan_if_failed(x):
        return np.where(failed, np.nan, x).astype(np.float32)

    def twomass(values, band):
        return np.where(has_2mass, values[band], 99.999).astype(np.float32)

    fields = [f"F{f:04d}_{int(lc):03d}{int(bc):+03d}" for f, lc, bc in zip(pop["field"], pop["field_l"][pop["field"]], pop["field_b"][pop["field"]])]
    table = {
        "APOGEE_ID": apogee["apogee_id"].astype("S30"),
        "TELESCOPE": np.where(pop["b"] < -20, "lco25m", "apo25m").astype("S6"),
        "FIELD": np.array(fields).astype("S20"),
        "RA": astro["ra"], "DEC": astro["dec"], "GLON": pop["l"], "GLAT": pop["b"],
        "J": twomass(tm["obs"], "J"), "J_ERR": twomass(tm["err"], "J"), "H": twomass(tm["obs"], "H"), "H_ERR": twomass(tm["err"], "H"),
        "K": twomass(tm["obs"], "K"), "K_ERR": twomass(tm["err"], "K"),
        "SNR": apogee["snr"].astype(np.float32), "STARFLAG": apogee["starflag"], "STARFLAGS": apogee["starflags"].astype("S160"),
        "ASPCAPFLAG": apogee["aspcapflag"], "ASPCAPFLAGS": apogee["aspcapflags"].astype("S200"), "EXTRATARG": np.zeros(n, np.int32),
        "TEFF": nan_if_failed(apogee["teff"]), "TEFF_ERR": nan_if_failed(apogee["teff_err"]),
        "LOGG": nan_if_failed(apogee["logg"]), "LOGG_ERR": nan_if_failed(apogee["logg_err"]),
        "M_H": nan_if_failed(apogee["m_h"]), "M_H_ERR": nan_if_failed(apogee["m_h_err"]),
        "GAIAEDR3_SOURCE_ID": apogee["gaia_id_in_allstar"].astype(np.int64),
        "GAIAEDR3_PHOT_G_MEAN_MAG": np.where(astro["in_gaia"], phot["g_obs"], np.nan).astype(np.float32),
        "GAIAEDR3_PARALLAX": np.where(astro["in_gaia"], astro["parallax"], np.nan).astype(np.float32),
    }
    dup = np.nonzero(rng.random(n) < 0.02)[0]
    extra = {k: np.asarray(v)[dup].copy() for k, v in table.items()}
    extra["SNR"] = (extra["SNR"] * rng.uniform(0.25, 0.8, dup.size)).astype(np.float32)
    extra["TELESCOPE"] = np.where(extra["TELESCOPE"] == b"apo25m", b"lco25m", b"apo25m").astype("S6")
    extra["EXTRATARG"] = np.full(dup.size, 16, np.int32)
    for col, scale in (("TEFF", 60.0), ("LOGG", 0.1), ("M_H", 0.05)):
        extra[col] = (extra[col] + rng.normal(0, scale, dup.size)).astype(np.float32)
    order = rng.permutation(n + dup.size)
    return {k: np.concatenate([np.asarray(v), extra[k]])[order] for k, v in table.items()}, dup


# -- 9. Gaia's tables -----------------------------------------------------------------------------
def faint_neighbours(astro: dict, g_rows, rng) -> dict:
    """Faint Gaia sources (G 18-20.8) 1.5-8 arcsec from 3% of the stars: what a crossmatch must not pick."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    ra, dec = astro["ra"], astro["dec"]
    n_nb = int(0.03 * g_rows.size)
    host = rng.choice(g_rows, n_nb, replace=False)
    sep_deg = rng.uniform(1.5, 8.0, n_nb) / 3600.0
    pa = rng.uniform(0, 2 * np.pi, n_nb)
    nb_dec = dec[host] + sep_deg * np.cos(pa)
    nb_ra = (ra[host] + sep_deg * np.sin(pa) / np.cos(np.radians(dec[host]))) % 360
    g = rng.uniform(18.0, 20.8, n_nb)
    bprp = rng.uniform(0.5, 2.5, n_nb)
    params = astrometry.draw_params_solved(g, rng)
    plx_err = astrometry.parallax_error_mas(g)
    gal = SkyCoord(ra=nb_ra * u.deg, dec=nb_dec * u.deg).galactic
    plx = rng.exponential(0.3, n_nb) + plx_err * rng.standard_normal(n_nb)
    return {"n": n_nb, "ra": nb_ra, "dec": nb_dec, "g": g, "bprp": bprp, "params": params, "plx_err": plx_err, "plx": plx,
            "nu": np.where(params == 31, astrometry.nu_eff_from_bprp(bprp), np.nan),
            "pc": np.where(params == 95, astrometry.nu_eff_from_bprp(bprp), np.nan), "l": gal.l.deg, "b": gal.b.deg}


def gaia_source_table(pop: dict, phot: dict, astro: dict, rng):
    """gaia_source rows of the stars Gaia has and of their faint neighbours, shuffled: (columns, neighbours)."""
    g_rows = np.nonzero(astro["in_gaia"])[0]
    nb = faint_neighbours(astro, g_rows, rng)
    n_nb = nb["n"]
    ours = lambda key: astro[key][g_rows]  # noqa: E731
    table = {
        "source_id": np.concatenate([ours("source_id"), astrometry.make_source_ids(nb["ra"], nb["dec"], rng)]),
        "ra": np.concatenate([ours("ra"), nb["ra"]]),
        "dec": np.concatenate([ours("dec"), nb["dec"]]),
        "l": np.concatenate([pop["l"][g_rows], nb["l"]]),
        "b": np.concatenate([pop["b"][g_rows], nb["b"]]),
        "parallax": np.concatenate([ours("parallax"), np.where(nb["params"] == 3, np.nan, nb["plx"])]),
        "parallax_error": np.concatenate([ours("parallax_error"), np.where(nb["params"] == 3, np.nan, nb["plx_err"])]).astype(np.float32),
        "ruwe": np.concatenate([ours("ruwe"), astrometry.draw_ruwe(n_nb, rng)]).astype(np.float32),
        "phot_g_mean_mag": np.concatenate([phot["g_obs"][g_rows], nb["g"]]).astype(np.float32),
        "phot_bp_mean_mag": np.concatenate([phot["bp_obs"][g_rows], nb["g"] + 0.4 * nb["bprp"]]).astype(np.float32),
        "phot_rp_mean_mag": np.concatenate([phot["rp_obs"][g_rows], nb["g"] - 0.6 * nb["bprp"]]).astype(np.float32),
        "phot_g_mean_flux_over_error": np.concatenate([phot["foe"]["g"][g_rows], np.full(n_nb, 150.0)]).astype(np.float32),
        "phot_bp_mean_flux_over_error": np.concatenate([phot["foe"]["bp"][g_rows], np.full(n_nb, 12.0)]).astype(np.float32),
        "phot_rp_mean_flux_over_error": np.concatenate([phot["foe"]["rp"][g_rows], np.full(n_nb, 15.0)]).astype(np.float32),
        "bp_rp": np.concatenate([ours("bprp_obs"), nb["bprp"]]).astype(np.float32),
        "phot_bp_rp_excess_factor": np.concatenate([phot["excess"][g_rows], rng.uniform(1.2, 2.5, n_nb)]).astype(np.float32),
        "nu_eff_used_in_astrometry": np.concatenate([ours("nu_eff"), nb["nu"]]).astype(np.float32),
        "pseudocolour": np.concatenate([ours("pseudocolour"), nb["pc"]]).astype(np.float32),
        "ecl_lat": np.concatenate([ours("ecl_lat"), astrometry.ecliptic_latitude_deg(nb["ra"], nb["dec"])]),
        "astrometric_params_solved": np.concatenate([ours("params_solved"), nb["params"]]).astype(np.int16),
        "has_xp_continuous": np.concatenate([ours("has_xp"), np.zeros(n_nb, bool)]),
    }
    perm = rng.permutation(table["source_id"].size)
    return {k: v[perm] for k, v in table.items()}, n_nb


def xp_continuous_table(astro: dict, xp_true: dict, rng) -> dict:
    """xp_continuous rows (the archive's columns) of the stars with XP; 0.2% of them without BP."""
    x_rows = np.nonzero(astro["has_xp"])[0]
    table = {"source_id": astro["source_id"][x_rows], "solution_id": np.full(x_rows.size, XP_SOLUTION_ID, np.int64)}
    for i, b in enumerate(gaia_xp.BANDS):
        noisy, err, nrel = (a[x_rows] for a in xp_true["observed"][b])
        gone = astro["missing_bp"][x_rows] if b == "bp" else np.zeros(x_rows.size, bool)
        n_meas = rng.integers(600, 6000, x_rows.size)
        std = rng.lognormal(np.log(1.05), 0.08, x_rows.size)
        table.update({
            f"{b}_basis_function_id": np.full(x_rows.size, 56 + i, np.int16),
            f"{b}_degrees_of_freedom": (n_meas - 55).astype(np.int16),
            f"{b}_n_parameters": np.full(x_rows.size, 55, np.int16),
            f"{b}_n_measurements": n_meas.astype(np.int16),
            f"{b}_n_rejected_measurements": rng.poisson(0.004 * n_meas).astype(np.int16),
            f"{b}_standard_deviation": std.astype(np.float32),
            f"{b}_chi_squared": (std**2 * (n_meas - 55)).astype(np.float32),
            f"{b}_coefficients": np.where(gone[:, None], np.nan, noisy),
            f"{b}_coefficient_errors": np.where(gone[:, None], np.nan, err),
            f"{b}_coefficient_correlations": np.where(gone[:, None], np.nan, np.zeros((x_rows.size, 55 * 54 // 2), np.float32)),
            f"{b}_n_relevant_bases": nrel.astype(np.int16),
            f"{b}_relative_shrinking": np.ones(x_rows.size, np.float32),
        })
    return table


# -- 10. DistMass-like catalogue of giants --------------------------------------------------------
def distmass_table(pop: dict, los: dict, apogee: dict, rng):
    """Masses (Msun), ages (Gyr) and distances (kpc) of the giants with good labels, with 6-12%,
    18-35% and 3-12% errors: (columns, which stars are in it)."""
    giants = np.isin(pop["evol_class"], ("rgb", "rc")) & (pop["logg"] < 3.6) & apogee["labels_good"]
    gi = np.nonzero(giants)[0]
    mass, age, dist = pop["mass"][gi], pop["age"][gi], los["distance_kpc"][gi]
    mass_err = mass * rng.uniform(0.06, 0.12, gi.size)
    age_err = age * rng.uniform(0.18, 0.35, gi.size)
    dist_err = dist * rng.uniform(0.03, 0.12, gi.size)
    table = {
        "APOGEE_ID": apogee["apogee_id"][gi].astype("S30"),
        "MASS": (mass + mass_err * rng.standard_normal(gi.size)).astype(np.float32), "MASS_ERR": mass_err.astype(np.float32),
        "AGE": np.clip(age + age_err * rng.standard_normal(gi.size), 0.05, None).astype(np.float32), "AGE_ERR": age_err.astype(np.float32),
        "DIST": (dist + dist_err * rng.standard_normal(gi.size)).astype(np.float32), "DIST_ERR": dist_err.astype(np.float32),
        "EVSTATE": np.where(pop["evol_class"][gi] == "rc", 2, 1).astype(np.int16),
    }
    return table, giants


# -- 11. the truth, and the files --------------------------------------------------------------
def truth_table(pop, los, xp_true, tm, phot, astro, apogee, giants, dup) -> dict:
    """The true value of everything, one row per star (for validation only)."""
    n = pop["teff"].size
    in_gaia = astro["in_gaia"]
    return {
        "apogee_id": apogee["apogee_id"], "source_id": np.where(in_gaia, astro["source_id"], 0), "ra": astro["ra"], "dec": astro["dec"],
        "l": pop["l"], "b": pop["b"], "distance_kpc": los["distance_kpc"], "parallax_true_mas": astro["parallax_true"],
        "zp_gdr3_mas": astro["zp_gdr3"], "zp_extra_mas": astro["zp_extra"],
        "teff": pop["teff"], "logg": pop["logg"], "m_h": pop["m_h"], "mass": pop["mass"], "age": pop["age"], "radius": pop["radius_rsun"],
        "component": pop["component"], "evol_class": pop["evol_class"], "field_type": pop["field_type"], "h_limit": los["h_limit"],
        "ebv_c19": los["ebv_c19"], "ebv_true": los["ebv_true"], "a_v": los["a_v"],
        "g_true": xp_true["g_true"], "bp_true": xp_true["bp_true"], "rp_true": xp_true["rp_true"],
        "j_true": tm["true"]["J"], "h_true": tm["true"]["H"], "k_true": tm["true"]["K"],
        "in_gaia": in_gaia, "has_xp": astro["has_xp"], "missing_bp": astro["missing_bp"], "has_2mass": tm["has_2mass"],
        "labels_good": apogee["labels_good"], "aspcap_failed": apogee["aspcap_failed"], "in_distmass": giants,
        "n_allstar_rows": 1 + np.isin(np.arange(n), dup),
        "bp_coefficients_true": list(xp_true["coeffs"]["bp"].astype(np.float32)),
        "rp_coefficients_true": list(xp_true["coeffs"]["rp"].astype(np.float32)),
    }


def write_sky(out: Path, cfg: SkyConfig, allstar, gaia_source, xp_table, dust, distmass, truth, manifest):
    """Every file of the sky, each whole or not at all (io.atomic), the manifest last."""
    hpx, best_fit = dust
    files = {
        "allStar.fits": lambda p: write_fits_table(p, allstar, hdu_name="ALLSTAR", header={"ORIGIN": "stellar-fm-pipeline mock sky",
                                                                                          "SKYSEED": cfg.seed}),
        "gaia_source.parquet": lambda p: write_parquet(p, gaia_source, metadata={"origin": "mock sky", "seed": cfg.seed}),
        "xp_continuous": lambda p: write_xp_partitions(p, xp_table, cfg.xp_partitions, cfg.xp_format),
        "dust/combined19/combine19.h5": lambda p: write_combined19(p, hpx, cfg.nside, best_fit),
        "distmass.fits": lambda p: write_fits_table(p, distmass, hdu_name="DISTMASS"),
        "truth.parquet": lambda p: write_parquet(p, truth, metadata={"note": "true values; read only by validation, never by training"}),
    }
    for name, write in files.items():
        with atomic_path(out / name) as tmp:
            write(tmp)
    write_json(manifest, out / "manifest.json")

def _jsonable(d):
    return json.loads(json.dumps(d, default=lambda o: o.item() if hasattr(o, "item") else str(o)))
