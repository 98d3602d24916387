"""The mock sky's survey files as the archives ship them: allStar (with repeat observations),
gaia_source (with faint neighbours), xp_continuous, a DistMass-like catalogue, the truth, and
writing them (``build.build_sky`` makes the stars they describe)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..catalog.combined19 import write_combined19
from ..gaia import xp as gaia_xp
from ..io.atomic import atomic_path, write_json
from ..io.readers import GAIA_DTYPES
from . import astrometry
from .writers import write_fits_table, write_parquet, write_xp_partitions

XP_SOLUTION_ID = 4545469030156206080  # DR3 XP solution id, as in the archive


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

    fields = [
        f"F{f:04d}_{int(lc):03d}{int(bc):+03d}"
        for f, lc, bc in zip(pop["field"], pop["field_l"][pop["field"]], pop["field_b"][pop["field"]])
    ]
    table = {
        "APOGEE_ID": apogee["apogee_id"].astype("S30"),
        "TELESCOPE": np.where(pop["b"] < -20, "lco25m", "apo25m").astype("S6"),
        "FIELD": np.array(fields).astype("S20"),
        "RA": astro["ra"],
        "DEC": astro["dec"],
        "GLON": pop["l"],
        "GLAT": pop["b"],
        "J": twomass(tm["obs"], "J"),
        "J_ERR": twomass(tm["err"], "J"),
        "H": twomass(tm["obs"], "H"),
        "H_ERR": twomass(tm["err"], "H"),
        "K": twomass(tm["obs"], "K"),
        "K_ERR": twomass(tm["err"], "K"),
        "SNR": apogee["snr"].astype(np.float32),
        "STARFLAG": apogee["starflag"],
        "STARFLAGS": apogee["starflags"].astype("S160"),
        "ASPCAPFLAG": apogee["aspcapflag"],
        "ASPCAPFLAGS": apogee["aspcapflags"].astype("S200"),
        "EXTRATARG": np.zeros(n, np.int32),
        "TEFF": nan_if_failed(apogee["teff"]),
        "TEFF_ERR": nan_if_failed(apogee["teff_err"]),
        "LOGG": nan_if_failed(apogee["logg"]),
        "LOGG_ERR": nan_if_failed(apogee["logg_err"]),
        "M_H": nan_if_failed(apogee["m_h"]),
        "M_H_ERR": nan_if_failed(apogee["m_h_err"]),
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
    return {
        "n": n_nb,
        "ra": nb_ra,
        "dec": nb_dec,
        "g": g,
        "bprp": bprp,
        "params": params,
        "plx_err": plx_err,
        "plx": plx,
        "nu": np.where(params == 31, astrometry.nu_eff_from_bprp(bprp), np.nan),
        "pc": np.where(params == 95, astrometry.nu_eff_from_bprp(bprp), np.nan),
        "l": gal.l.deg,
        "b": gal.b.deg,
    }


GAIA_SOURCE_DTYPES = GAIA_DTYPES  # the archive's column types: one table, which the readers also read back to


def gaia_source_columns(pop: dict, phot: dict, astro: dict, rows) -> dict:
    """gaia_source columns (the archive's names and types) of the mock's stars ``rows``."""
    a = lambda key: astro[key][rows]  # noqa: E731
    cols = {
        "source_id": a("source_id"),
        "ra": a("ra"),
        "dec": a("dec"),
        "l": pop["l"][rows],
        "b": pop["b"][rows],
        "parallax": a("parallax"),
        "parallax_error": a("parallax_error"),
        "ruwe": a("ruwe"),
        "phot_g_mean_mag": phot["g_obs"][rows],
        "phot_bp_mean_mag": phot["bp_obs"][rows],
        "phot_rp_mean_mag": phot["rp_obs"][rows],
        **{f"phot_{b}_mean_flux_over_error": phot["foe"][b][rows] for b in ("g", "bp", "rp")},
        "bp_rp": a("bprp_obs"),
        "phot_bp_rp_excess_factor": phot["excess"][rows],
        "nu_eff_used_in_astrometry": a("nu_eff"),
        "pseudocolour": a("pseudocolour"),
        "ecl_lat": a("ecl_lat"),
        "astrometric_params_solved": a("params_solved"),
        "has_xp_continuous": a("has_xp"),
    }
    return {k: v.astype(GAIA_SOURCE_DTYPES[k]) if k in GAIA_SOURCE_DTYPES else v for k, v in cols.items()}


def gaia_source_table(pop: dict, phot: dict, astro: dict, rng):
    """gaia_source rows of the stars Gaia has and of their faint neighbours, shuffled: (columns, neighbours)."""
    g_rows = np.nonzero(astro["in_gaia"])[0]
    nb = faint_neighbours(astro, g_rows, rng)
    n_nb = nb["n"]
    neighbours = {
        "source_id": astrometry.make_source_ids(nb["ra"], nb["dec"], rng),
        "ra": nb["ra"],
        "dec": nb["dec"],
        "l": nb["l"],
        "b": nb["b"],
        "parallax": np.where(nb["params"] == 3, np.nan, nb["plx"]),
        "parallax_error": np.where(nb["params"] == 3, np.nan, nb["plx_err"]),
        "ruwe": astrometry.draw_ruwe(n_nb, rng),
        "phot_g_mean_mag": nb["g"],
        "phot_bp_mean_mag": nb["g"] + 0.4 * nb["bprp"],
        "phot_rp_mean_mag": nb["g"] - 0.6 * nb["bprp"],
        "phot_g_mean_flux_over_error": np.full(n_nb, 150.0),
        "phot_bp_mean_flux_over_error": np.full(n_nb, 12.0),
        "phot_rp_mean_flux_over_error": np.full(n_nb, 15.0),
        "bp_rp": nb["bprp"],
        "phot_bp_rp_excess_factor": rng.uniform(1.2, 2.5, n_nb),
        "nu_eff_used_in_astrometry": nb["nu"],
        "pseudocolour": nb["pc"],
        "ecl_lat": astrometry.ecliptic_latitude_deg(nb["ra"], nb["dec"]),
        "astrometric_params_solved": nb["params"],
        "has_xp_continuous": np.zeros(n_nb, bool),
    }
    ours = gaia_source_columns(pop, phot, astro, g_rows)
    table = {k: np.concatenate([v, np.asarray(neighbours[k]).astype(v.dtype)]) for k, v in ours.items()}
    perm = rng.permutation(table["source_id"].size)
    return {k: v[perm] for k, v in table.items()}, n_nb


def xp_continuous_table(astro: dict, xp_true: dict, rng, correlations: bool = True) -> dict:
    """xp_continuous rows (the archive's columns) of the stars with XP; 0.2% of them without BP.
    ``correlations=False`` leaves the coefficient correlations null (nothing reads them, and at
    millions of sources they would be most of the files)."""
    x_rows = np.nonzero(astro["has_xp"])[0]
    table = {"source_id": astro["source_id"][x_rows], "solution_id": np.full(x_rows.size, XP_SOLUTION_ID, np.int64)}
    for i, b in enumerate(gaia_xp.BANDS):
        noisy, err, nrel = (a[x_rows] for a in xp_true["observed"][b])
        gone = astro["missing_bp"][x_rows] if b == "bp" else np.zeros(x_rows.size, bool)
        n_meas = rng.integers(600, 6000, x_rows.size)
        std = rng.lognormal(np.log(1.05), 0.08, x_rows.size)
        table.update(
            {
                f"{b}_basis_function_id": np.full(x_rows.size, 56 + i, np.int16),
                f"{b}_degrees_of_freedom": (n_meas - 55).astype(np.int16),
                f"{b}_n_parameters": np.full(x_rows.size, 55, np.int16),
                f"{b}_n_measurements": n_meas.astype(np.int16),
                f"{b}_n_rejected_measurements": rng.poisson(0.004 * n_meas).astype(np.int16),
                f"{b}_standard_deviation": std.astype(np.float32),
                f"{b}_chi_squared": (std**2 * (n_meas - 55)).astype(np.float32),
                f"{b}_coefficients": np.where(gone[:, None], np.nan, noisy),
                f"{b}_coefficient_errors": np.where(gone[:, None], np.nan, err),
                f"{b}_coefficient_correlations": (
                    np.where(gone[:, None], np.nan, np.zeros((x_rows.size, 55 * 54 // 2), np.float32))
                    if correlations
                    else np.full((x_rows.size, 1), np.nan, np.float32)
                ),
                f"{b}_n_relevant_bases": nrel.astype(np.int16),
                f"{b}_relative_shrinking": np.ones(x_rows.size, np.float32),
            }
        )
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
        "MASS": (mass + mass_err * rng.standard_normal(gi.size)).astype(np.float32),
        "MASS_ERR": mass_err.astype(np.float32),
        "AGE": np.clip(age + age_err * rng.standard_normal(gi.size), 0.05, None).astype(np.float32),
        "AGE_ERR": age_err.astype(np.float32),
        "DIST": (dist + dist_err * rng.standard_normal(gi.size)).astype(np.float32),
        "DIST_ERR": dist_err.astype(np.float32),
        "EVSTATE": np.where(pop["evol_class"][gi] == "rc", 2, 1).astype(np.int16),
    }
    return table, giants


# -- 11. the truth, and the files --------------------------------------------------------------
def truth_table(pop, los, xp_true, tm, phot, astro, apogee, giants, dup) -> dict:
    """The true value of everything, one row per star (for validation only)."""
    n = pop["teff"].size
    in_gaia = astro["in_gaia"]
    return {
        "apogee_id": apogee["apogee_id"],
        "source_id": np.where(in_gaia, astro["source_id"], 0),
        "ra": astro["ra"],
        "dec": astro["dec"],
        "l": pop["l"],
        "b": pop["b"],
        "distance_kpc": los["distance_kpc"],
        "parallax_true_mas": astro["parallax_true"],
        "zp_gdr3_mas": astro["zp_gdr3"],
        "zp_extra_mas": astro["zp_extra"],
        "teff": pop["teff"],
        "logg": pop["logg"],
        "m_h": pop["m_h"],
        "mass": pop["mass"],
        "age": pop["age"],
        "radius": pop["radius_rsun"],
        "component": pop["component"],
        "evol_class": pop["evol_class"],
        "field_type": pop["field_type"],
        "h_limit": los["h_limit"],
        "ebv_c19": los["ebv_c19"],
        "ebv_true": los["ebv_true"],
        "a_v": los["a_v"],
        "g_true": xp_true["g_true"],
        "bp_true": xp_true["bp_true"],
        "rp_true": xp_true["rp_true"],
        "j_true": tm["true"]["J"],
        "h_true": tm["true"]["H"],
        "k_true": tm["true"]["K"],
        "in_gaia": in_gaia,
        "has_xp": astro["has_xp"],
        "missing_bp": astro["missing_bp"],
        "has_2mass": tm["has_2mass"],
        "labels_good": apogee["labels_good"],
        "aspcap_failed": apogee["aspcap_failed"],
        "in_distmass": giants,
        "n_allstar_rows": 1 + np.isin(np.arange(n), dup),
        "bp_coefficients_true": list(xp_true["coeffs"]["bp"].astype(np.float32)),
        "rp_coefficients_true": list(xp_true["coeffs"]["rp"].astype(np.float32)),
    }


def write_sky(out: Path, cfg, allstar, gaia_source, xp_table, dust, distmass, truth, manifest):
    """Every file of the sky, each whole or not at all (io.atomic), the manifest last."""
    hpx, best_fit = dust
    files = {
        "allStar.fits": lambda p: write_fits_table(
            p, allstar, hdu_name="ALLSTAR", header={"ORIGIN": "stellar-fm-pipeline mock sky", "SKYSEED": cfg.seed}
        ),
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
