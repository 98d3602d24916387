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

from ..catalog.combined19 import Combined19Map
from ..gaia import photometry
from ..gaia import xp as gaia_xp
from ..settings import from_dict
from . import astrometry, sed, xp
from .dust import DustModel, build_map
from .population import H_LIMITS, draw_population, sample_distances
from .tables import allstar_table, distmass_table, gaia_source_table, truth_table, write_sky, xp_continuous_table

log = logging.getLogger(__name__)

EBV_TRUE_PER_SFD = 0.884  # Schlafly & Finkbeiner (2011), eq. 10 of Leung & Bovy
R_V = 3.1
XP_G_LIMIT = 17.65  # Gaia DR3 published XP continuous spectra for G < 17.65
GAIA_G_LIMIT = 20.9
STARFLAG_BITS = {
    0: "BAD_PIXELS",
    2: "BRIGHT_NEIGHBOR",
    3: "VERY_BRIGHT_NEIGHBOR",
    4: "LOW_SNR",
    9: "PERSIST_HIGH",
    11: "PERSIST_LOW",
    16: "SUSPECT_RV_COMBINATION",
    17: "SUSPECT_BROAD_LINES",
    19: "RV_WARN",
}
ASPCAPFLAG_BITS = {
    0: "TEFF_WARN",
    1: "LOGG_WARN",
    2: "VMICRO_WARN",
    3: "M_H_WARN",
    6: "N_M_WARN",
    7: "STAR_WARN",
    8: "CHI2_WARN",
    16: "TEFF_BAD",
    17: "LOGG_BAD",
    19: "M_H_BAD",
    23: "STAR_BAD",
    24: "CHI2_BAD",
}
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
        "stars": n,
        "allstar_rows": int(n + dup.size),
        "gaia_source_rows": int(gaia_source["source_id"].size),
        "xp_rows": int(xp_table["source_id"].size),
        "with_xp": int(astro["has_xp"].sum()),
        "with_good_labels": int(apogee["labels_good"].sum()),
        "xp_without_good_labels": int((astro["has_xp"] & ~apogee["labels_good"]).sum()),
        "good_labels_without_xp": int((apogee["labels_good"] & ~astro["has_xp"]).sum()),
        "not_in_gaia": int((~astro["in_gaia"]).sum()),
        "without_gaia_id_in_allstar": int((apogee["gaia_id_in_allstar"] == 0).sum()),
        "without_2mass": int((~tm["has_2mass"]).sum()),
        "distmass_rows": int(giants.sum()),
        "gaia_neighbours": n_neighbours,
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
def stellar_population(n: int, rng, **kinds) -> dict:
    """Draw the stars (population.draw_population; ``kinds``: its positions and class fractions) and
    their radii (Rsun) and 2MASS absolute magnitudes."""
    pop = draw_population(n, rng, **kinds)
    pop["radius_rsun"] = sed.radius_rsun(pop["mass"], pop["logg"])
    tm_grids, _ = sed.twomass_grid()
    pop["ext_2mass"] = {band: extinction_per_av(g) for band, g in tm_grids.items()}  # A_band / A_V along each filter
    pop["abs_2mass"] = sed.twomass_abs_mags(pop["teff"], pop["radius_rsun"])
    return pop


# -- 3. distances along each line of sight, with the dust in front of the star ---------------------
def distances_and_extinction(pop: dict, dmap: Combined19Map, rng, h_limits=H_LIMITS) -> dict:
    """Distances (kpc) drawn within the survey's H limits (APOGEE's by default) given the dust in
    front of each star, and the star's E(B-V) on the map's (SFD) scale, the true E(B-V) (x 0.884)
    and A_V (x R_V)."""
    n = pop["teff"].size
    rows = dmap.rows(pop["l"], pop["b"])
    a_h_per_av = float(np.mean(pop["ext_2mass"]["H"]))

    def a_h_of_d(d_grid):
        ebv = dmap.ebv_at_rows(rows, np.broadcast_to(d_grid, (n, d_grid.size)))
        return R_V * EBV_TRUE_PER_SFD * np.clip(ebv, 0, None) * a_h_per_av

    dist_kpc, h_lim = sample_distances(pop, pop["abs_2mass"]["H"], a_h_of_d, rng, h_limits=h_limits)
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
    foe = {
        "g": flux_over_error(xp_true["g_true"], photometry.G_ZEROPOINT_MAG, 0.004, 3e-4),
        "bp": flux_over_error(xp_true["bp_true"], photometry.BP_ZEROPOINT_MAG, 0.12, 1.2e-3),
        "rp": flux_over_error(xp_true["rp_true"], photometry.RP_ZEROPOINT_MAG, 0.08, 1.0e-3),
    }
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
    pseudocolour = np.where(
        params_solved == 95, np.clip(astrometry.nu_eff_from_bprp(bprp_obs) + rng.normal(0, 0.03, n), 1.24, 1.72), np.nan
    )
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
    return {
        "ra": ra,
        "dec": dec,
        "ecl_lat": ecl_lat,
        "in_gaia": in_gaia,
        "source_id": source_id,
        "params_solved": params_solved,
        "ruwe": ruwe,
        "bprp_obs": bprp_obs,
        "nu_eff": nu_eff,
        "pseudocolour": pseudocolour,
        "zp_gdr3": zp_gdr3,
        "zp_extra": zp_extra,
        "parallax": plx,
        "parallax_error": plx_err,
        "parallax_true": plx_true,
        "has_xp": has_xp,
        "missing_bp": missing_bp,
    }


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
        0: rng.random(n) < 0.025,
        2: rng.random(n) < 0.04,
        3: rng.random(n) < 0.015,
        4: snr < 30,
        9: rng.random(n) < 0.05,
        11: rng.random(n) < 0.04,
        16: rng.random(n) < 0.02,
        17: (pop["evol_class"] == "hot") | (rng.random(n) < 0.01),
        19: rng.random(n) < 0.01,
    }
    starflag, starflags = _flags(sb, STARFLAG_BITS, n)
    extreme = (pop["teff"] > 7000) | (pop["teff"] < 3500) | (pop["logg"] < 0.9)
    star_bad = extreme & (rng.random(n) < 0.8) | (rng.random(n) < 0.08) | (snr < 20)
    m_h_bad = (rng.random(n) < 0.02) | ((pop["m_h"] < -2.0) & (rng.random(n) < 0.5))
    ab = {
        0: rng.random(n) < 0.08,
        1: rng.random(n) < 0.10,
        2: rng.random(n) < 0.15,
        3: m_h_bad | (rng.random(n) < 0.03),
        6: rng.random(n) < 0.3,
        7: star_bad | (rng.random(n) < 0.1),
        8: rng.random(n) < 0.05,
        16: star_bad & (rng.random(n) < 0.3),
        17: star_bad & (rng.random(n) < 0.3),
        19: m_h_bad,
        23: star_bad,
        24: star_bad & (rng.random(n) < 0.2),
    }
    aspcapflag, aspcapflags = _flags(ab, ASPCAPFLAG_BITS, n)
    aspcap_failed = rng.random(n) < 0.02
    labels_good = (
        (starflag == 0) & ~(aspcapflag >> M_H_BAD_BIT & 1).astype(bool) & ~(aspcapflag >> STAR_BAD_BIT & 1).astype(bool) & ~aspcap_failed
    )
    gaia_id_in_allstar = np.where(astro["in_gaia"] & (rng.random(n) > 0.015), astro["source_id"], 0)
    return {
        "snr": snr,
        "teff": teff_obs,
        "teff_err": teff_err,
        "logg": logg_obs,
        "logg_err": logg_err,
        "m_h": m_h_obs,
        "m_h_err": m_h_err,
        "starflag": starflag,
        "starflags": starflags,
        "aspcapflag": aspcapflag,
        "aspcapflags": aspcapflags,
        "aspcap_failed": aspcap_failed,
        "labels_good": labels_good,
        "apogee_id": astrometry.twomass_designation(astro["ra"], astro["dec"]),
        "gaia_id_in_allstar": gaia_id_in_allstar,
    }


def _jsonable(d):
    return json.loads(json.dumps(d, default=lambda o: o.item() if hasattr(o, "item") else str(o)))
