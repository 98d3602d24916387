"""The catalog stage: raw survey files in, one row per star out (``catalog.parquet``, ``counts.json``).

Columns of the catalog are the token names of the vocabulary (bp0..bp54, rp0..rp54, bprp, jh,
jk, teff, logg, m_h, logebv, g_fakemag) with ``<name>_err`` beside each, NaN where the datum is
missing or failed its cut, plus identifiers and bookkeeping (apogee_id, source_id, match, ra,
dec, l, b, phot_g_mean_mag, parallax_corrected_mas, zp_offset_mas, zp_flag, has_xp,
labels_good, parallax_usable).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..io.atomic import write_json, write_parquet
from ..io.readers import InputFileError, read_allstar, read_gaia_source
from ..io.xp_readers import read_xp_coefficients
from ..settings import from_dict
from . import photometry as ph
from .crossmatch import ALLSTAR_COLUMNS, GAIA_COLUMNS, best_visit_per_star, crossmatch
from .extinction import log_ebv_dask
from .zeropoint import corrected_parallax_mas, parallax_offset_mas

log = logging.getLogger(__name__)
N_COEFF = 55
MISSING_2MASS = 50.0  # allStar writes 99.999 for missing 2MASS magnitudes


@dataclass(frozen=True)
class Extinction:
    """``catalog.extinction``: the parallax samples through the dust map (section 4)."""

    n_samples: int = 1000  # parallax samples per star
    chunk_stars: int = 2000  # stars per Dask chunk
    seed: int = 1
    cluster: str = "local"  # local (threads) | distributed (a dask LocalCluster)


@dataclass
class CatalogConfig:
    """Every threshold of the catalog stage (section 4 of Leung & Bovy)."""

    crossmatch_radius_arcsec: float = 1.0  # sky match for allStar rows without GAIAEDR3_SOURCE_ID
    aspcapflag_bad_bits: tuple = (19, 23)  # M_H_BAD, STAR_BAD: labels become NaN (as does STARFLAG != 0)
    require_starflag_zero: bool = True  # APOGEE labels only where STARFLAG == 0
    xp_g_min: float = 6.0  # XP used for 6 < G < 17.5 ...
    xp_g_max: float = 17.5
    xp_bprp_min: float = 0.0  # ... 0 < BP-RP < 4 ...
    xp_bprp_max: float = 4.0
    xp_excess_max: float = 2.0  # ... and a BP/RP flux excess factor below 2
    xp_clip_percentiles: tuple = (0.2, 99.8)  # per normalised coefficient; outliers become NaN
    ruwe_max: float = 1.4  # a parallax is used (luminosity, extinction) where RUWE < 1.4 ...
    parallax_error_max_mas: float = 0.1  # ... and its error is below 0.1 mas
    extinction: Extinction = field(default_factory=Extinction)  # the parallax samples through the dust map

    @classmethod
    def from_dict(cls, d):
        return from_dict(cls, d, "catalog")


def label_quality(starflag, aspcapflag, bad_bits=(19, 23), require_starflag_zero=True):
    """True where APOGEE labels are usable: STARFLAG == 0 and none of ``bad_bits`` set in ASPCAPFLAG."""
    aspcap = np.nan_to_num(np.asarray(aspcapflag, float)).astype(np.int64)
    good = np.ones(aspcap.shape, bool)
    if require_starflag_zero:
        good &= np.nan_to_num(np.asarray(starflag, float)).astype(np.int64) == 0
    for bit in bad_bits:
        good &= ((aspcap >> bit) & 1) == 0
    return good


def xp_quality(g_mag, bp_rp, excess, cfg: CatalogConfig):
    """The paper's XP cuts: 6 < G < 17.5, 0 < BP-RP < 4, excess factor < 2 (NaN fails)."""
    g, c, e = (np.asarray(x, float) for x in (g_mag, bp_rp, excess))
    with np.errstate(invalid="ignore"):
        return (g > cfg.xp_g_min) & (g < cfg.xp_g_max) & (c > cfg.xp_bprp_min) & (c < cfg.xp_bprp_max) & (e < cfg.xp_excess_max)


def parallax_quality(ruwe, parallax_error_mas, cfg: CatalogConfig):
    """A parallax is usable if ruwe < 1.4 and its error < 0.1 mas (NaN fails)."""
    with np.errstate(invalid="ignore"):
        return (np.asarray(ruwe, float) < cfg.ruwe_max) & (np.asarray(parallax_error_mas, float) < cfg.parallax_error_max_mas)


def percentile_clip(values, keep_rows, percentiles=(0.2, 99.8)):
    """NaN outside each column's [p_lo, p_hi] percentile range, computed over ``keep_rows``. Returns (values, n_clipped)."""
    v = values.copy()
    ref = v[keep_rows]
    lo, hi = np.nanpercentile(ref, percentiles[0], axis=0), np.nanpercentile(ref, percentiles[1], axis=0)
    out = (v < lo) | (v > hi)
    v[out] = np.nan
    return v, int(out.sum())


LABEL_COLUMNS = (("teff", "TEFF"), ("logg", "LOGG"), ("m_h", "M_H"))


def require_labels(allstar: pd.DataFrame, good_labels, path):
    """Each label column must hold usable values: a column entirely NaN or -9999 (a wrong file, a
    renamed column left empty), or entirely flagged, would pass NaN to every later stage."""
    for _, col in LABEL_COLUMNS:
        v = allstar[col].to_numpy(float)
        usable = np.isfinite(v) & (v > -9000)
        if not usable.any():
            raise InputFileError(
                f"{path}: column {col} has no usable value (all {v.size} rows are NaN or -9999); "
                "the model needs labels: is this the allStar file with ASPCAP's parameters?"
            )
        if not (usable & good_labels).any():
            raise InputFileError(
                f"{path}: every row with a {col} is flagged (STARFLAG != 0 or ASPCAPFLAG bits "
                "catalog.aspcapflag_bad_bits set); no star keeps a label. Check the flags, or the "
                "catalog.require_starflag_zero and catalog.aspcapflag_bad_bits settings"
            )


def _cut(counts: dict, name: str, n: int, total: int):
    counts[name] = int(n)
    log.info("cut %-44s %8d of %8d", name, n, total)


def normalised_xp(xp: dict, g_mag, xp_ok):
    """The tokens' XP coefficients: per band (coefficients, errors) divided by the G-band flux, NaN
    beyond the band's relevant bases and for stars failing ``xp_ok`` or lacking a coefficient.
    ``xp``: per band (coefficients, errors, n_relevant_bases), stars x 55. Returns (blocks, xp_ok
    and-ed with completeness: all 110 coefficients and errors present)."""
    xp_ok = np.asarray(xp_ok, bool).copy()
    blocks = {}
    for b in ("bp", "rp"):
        coef, err, nrel = xp[b]
        xp_ok &= np.isfinite(coef).all(axis=1) & np.isfinite(err).all(axis=1)
        coef, err = ph.normalise_xp(coef, err, g_mag)
        relevant = ph.relevancy_mask(nrel)
        blocks[b] = (np.where(relevant, coef, np.nan), np.where(relevant, err, np.nan))
    return {b: (np.where(xp_ok[:, None], c, np.nan), e) for b, (c, e) in blocks.items()}, xp_ok


def xp_frame(blocks: dict) -> pd.DataFrame:
    """bp0..rp54 and their ``_err`` columns; an error is NaN where its coefficient is (missing or clipped)."""
    frames = []
    for b, (coef, err) in blocks.items():
        frames.append(pd.DataFrame(coef, columns=[f"{b}{k}" for k in range(N_COEFF)]))
        frames.append(pd.DataFrame(np.where(np.isfinite(coef), err, np.nan), columns=[f"{b}{k}_err" for k in range(N_COEFF)]))
    return pd.concat(frames, axis=1)


def _xp_columns(out: pd.DataFrame, cat: pd.DataFrame, g_mag, xp_path, cfg: CatalogConfig, cuts: dict) -> pd.DataFrame:
    """The normalised XP coefficients and errors (bp0..rp54, ``_err``) and ``has_xp``: the stars
    with spectra passing the G, BP-RP and excess-factor cuts, all 110 coefficients present, each
    coefficient clipped at the configured percentiles."""
    n = len(out)
    sid, xp = read_xp_coefficients(xp_path)
    pos = pd.Series(np.arange(sid.size), index=sid)
    row = pos.reindex(out.source_id.where(out.match != "none", -1).to_numpy()).to_numpy()
    has = np.isfinite(row)
    rowi = np.where(has, row, 0).astype(int)
    xp_ok = has & xp_quality(g_mag, cat.bp_rp, cat.phot_bp_rp_excess_factor, cfg)
    _cut(cuts, "with XP spectra", has.sum(), n)
    _cut(cuts, "XP passing G, BP-RP and excess-factor cuts", xp_ok.sum(), n)
    rows = {
        b: (np.where(has[:, None], c[rowi], np.nan), np.where(has[:, None], e[rowi], np.nan), np.where(has, k[rowi], 0))
        for b, (c, e, k) in xp.items()
    }
    blocks, xp_ok = normalised_xp(rows, g_mag, xp_ok)
    _cut(cuts, "XP complete (all 110 coefficients present)", xp_ok.sum(), n)
    for b, (coef, err) in blocks.items():
        coef, n_clip = percentile_clip(coef, xp_ok, cfg.xp_clip_percentiles)
        _cut(cuts, f"{b} coefficients clipped at {cfg.xp_clip_percentiles} percentiles", n_clip, int(xp_ok.sum()) * N_COEFF)
        blocks[b] = (coef, err)
    out = pd.concat([out, xp_frame(blocks)], axis=1)
    out["has_xp"] = xp_ok
    return out


def _label_columns(out: pd.DataFrame, cat: pd.DataFrame, cfg: CatalogConfig, cuts: dict, allstar_path):
    """teff, logg, m_h and their errors (NaN where flagged or missing) and ``labels_good``, in place."""
    good_labels = label_quality(cat.STARFLAG, cat.ASPCAPFLAG, cfg.aspcapflag_bad_bits, cfg.require_starflag_zero)
    _cut(cuts, "labels set to NaN by STARFLAG/ASPCAPFLAG", (~good_labels).sum(), len(cat))
    require_labels(cat, good_labels, allstar_path)
    for name, col in LABEL_COLUMNS:
        v = cat[col].to_numpy(float)
        e = cat[f"{col}_ERR"].to_numpy(float)
        ok = good_labels & np.isfinite(v) & np.isfinite(e) & (v > -9000)
        out[name] = np.where(ok, v, np.nan)
        out[f"{name}_err"] = np.where(ok, e, np.nan)
    out["labels_good"] = good_labels


def _identifiers(cat: pd.DataFrame) -> pd.DataFrame:
    """The catalog's identifying columns: ids, how the star was matched, position, G."""
    return pd.DataFrame(
        {
            "apogee_id": cat.APOGEE_ID.to_numpy(),
            "source_id": cat.source_id.to_numpy().astype(np.int64),
            "match": cat.match.to_numpy(),
            "ra": cat.RA.to_numpy(),
            "dec": cat.DEC.to_numpy(),
            "l": cat.GLON.to_numpy(),
            "b": cat.GLAT.to_numpy(),
            "phot_g_mean_mag": cat.phot_g_mean_mag.to_numpy(),
        }
    )


def _g_magnitudes(cat: pd.DataFrame, gaia_path) -> np.ndarray:
    """G (mag) of the matched stars; NaN/inf of matched stars is warned about (no XP, no luminosity)."""
    g_mag = cat.phot_g_mean_mag.to_numpy(float)
    bad_g = ~np.isfinite(g_mag) & (cat.match != "none").to_numpy()
    if bad_g.any():
        log.warning(
            "gaia_source %s: %d matched stars have NaN/inf phot_g_mean_mag (e.g. source_id %s): no XP, no luminosity for them",
            gaia_path,
            bad_g.sum(),
            cat.source_id[bad_g].head(3).tolist(),
        )
        g_mag = np.where(np.isfinite(g_mag), g_mag, np.nan)
    return g_mag


def bprp_and_error(gaia: pd.DataFrame):
    """BP-RP (mag) of gaia_source and its error from the BP and RP flux-over-error."""
    return gaia.bp_rp.to_numpy(float), ph.bp_rp_error_mag(gaia.phot_bp_mean_flux_over_error, gaia.phot_rp_mean_flux_over_error)


def _colour_columns(out: pd.DataFrame, cat: pd.DataFrame) -> None:
    """J-H, J-K (2MASS, 99.999 = missing) and BP-RP with their errors (mag), into ``out``."""
    tm = {b: np.where(cat[b].to_numpy(float) < MISSING_2MASS, cat[b].to_numpy(float), np.nan) for b in "JHK"}
    tme = {b: np.where(cat[f"{b}_ERR"].to_numpy(float) < MISSING_2MASS, cat[f"{b}_ERR"].to_numpy(float), np.nan) for b in "JHK"}
    out["jh"], out["jh_err"] = ph.colour_and_error(tm["J"], tme["J"], tm["H"], tme["H"])
    out["jk"], out["jk_err"] = ph.colour_and_error(tm["J"], tme["J"], tm["K"], tme["K"])
    out["bprp"], out["bprp_err"] = bprp_and_error(cat)


def parallax_columns(gaia: pd.DataFrame, g_mag, cfg: CatalogConfig) -> dict:
    """The zero-point corrected parallax (Lindegren et al. 2021 plus the paper's term), whether it
    is usable (ruwe, parallax_error, finite), and the pseudo-luminosity g_fakemag with its error
    (NaN where the parallax is not usable), from gaia_source columns."""
    offset, flag = parallax_offset_mas(
        g_mag, gaia.nu_eff_used_in_astrometry, gaia.pseudocolour, gaia.ecl_lat, gaia.astrometric_params_solved
    )
    plx = corrected_parallax_mas(gaia.parallax.to_numpy(float), offset)
    plx_err = gaia.parallax_error.to_numpy(float)
    usable = parallax_quality(gaia.ruwe, plx_err, cfg) & np.isfinite(plx) & np.isfinite(g_mag)
    gf, gfe = ph.pseudo_luminosity(plx, plx_err, g_mag)
    return {
        "parallax_corrected_mas": plx,
        "parallax_error_mas": plx_err,
        "zp_offset_mas": offset,
        "zp_flag": flag,
        "parallax_usable": usable,
        "g_fakemag": np.where(usable, gf, np.nan),
        "g_fakemag_err": np.where(usable, gfe, np.nan),
    }


def _log_ebv(out, plx, plx_err, usable, dust_dir, cfg: CatalogConfig, n_workers, client):
    """ln E(B-V) and its error through the dust map, for stars with a usable parallax (else NaN)."""
    ext = cfg.extinction
    return log_ebv_dask(
        np.where(usable, plx, np.nan),
        np.where(usable, plx_err, np.nan),
        out.l.to_numpy(),
        out.b.to_numpy(),
        dust_dir,
        n_samples=int(ext.n_samples),
        chunk_stars=int(ext.chunk_stars),
        seed=int(ext.seed),
        n_workers=n_workers,
        cluster=ext.cluster,
        client=client,
    )


def build_catalog(
    allstar_path, gaia_path, xp_path, dust_dir, cfg: CatalogConfig, n_workers: int = 1, client=None
) -> tuple[pd.DataFrame, dict]:
    """Run the whole catalog stage in memory; returns (catalog, counts)."""
    t0 = time.perf_counter()
    cuts: dict = {}
    raw = read_allstar(allstar_path, ALLSTAR_COLUMNS)
    if raw.empty:
        raise ValueError(f"{allstar_path}: the allStar table is empty")
    stars, n_dup = best_visit_per_star(raw)
    _cut(cuts, "allStar rows", len(raw), len(raw))
    _cut(cuts, "repeat visits dropped (kept highest SNR)", n_dup, len(raw))
    gaia = read_gaia_source(gaia_path, GAIA_COLUMNS)
    cat = crossmatch(stars, gaia, cfg.crossmatch_radius_arcsec)
    n = len(cat)
    _cut(cuts, "matched by source_id", (cat.match == "source_id").sum(), n)
    _cut(cuts, "matched by position", (cat.match == "position").sum(), n)
    _cut(cuts, "without a Gaia match", (cat.match == "none").sum(), n)

    out = _identifiers(cat)
    g_mag = _g_magnitudes(cat, gaia_path)

    _label_columns(out, cat, cfg, cuts, allstar_path)

    _colour_columns(out, cat)

    # zero point and pseudo-luminosity
    for k, v in parallax_columns(cat, g_mag, cfg).items():
        out[k] = v
    usable, flag = out.parallax_usable.to_numpy(), out.zp_flag.to_numpy()
    _cut(cuts, "parallax usable (ruwe, parallax_error)", usable.sum(), n)
    _cut(cuts, "zero point not applied (solution type)", ((flag == 1) & np.isfinite(cat.parallax.to_numpy(float))).sum(), n)
    _cut(cuts, "zero point extrapolated (outside calibration)", (flag == 2).sum(), n)
    plx, plx_err = out.parallax_corrected_mas.to_numpy(), out.parallax_error_mas.to_numpy()

    out = _xp_columns(out, cat, g_mag, xp_path, cfg, cuts)

    out["logebv"], out["logebv_err"] = _log_ebv(out, plx, plx_err, usable, dust_dir, cfg, n_workers, client)
    _cut(cuts, "with logebv", np.isfinite(out["logebv"].to_numpy()).sum(), n)

    token_cols = [c for c in out.columns if c in set(_value_columns())]
    anything = np.isfinite(out[token_cols].to_numpy(float)).any(axis=1)
    _cut(cuts, "dropped: nothing usable left", (~anything).sum(), n)
    out = out[anything].reset_index(drop=True)
    counts = table1_counts(out)
    counts["cuts"] = cuts
    log.info("catalog: %d stars in %.1f s", len(out), time.perf_counter() - t0)
    return out, counts


def _value_columns():
    return [f"{b}{k}" for b in ("bp", "rp") for k in range(N_COEFF)] + ["bprp", "jh", "jk", "teff", "logg", "m_h", "logebv", "g_fakemag"]


def table1_counts(cat: pd.DataFrame) -> dict:
    """The categories of Table 1 of Leung & Bovy."""
    has_teff = cat.teff.notna()
    params = cat[["teff", "logg", "m_h"]].notna().all(axis=1)
    return {
        "stars": int(len(cat)),
        "with_xp": int(cat.has_xp.sum()),
        "with_teff": int(has_teff.sum()),
        "with_teff_logg_m_h": int(params.sum()),
        "xp_without_apogee_parameters": int((cat.has_xp & ~params).sum()),
        "apogee_parameters_without_xp": int((params & ~cat.has_xp).sum()),
        "without_g_luminosity": int(cat.g_fakemag.isna().sum()),
        "without_logebv": int(cat.logebv.isna().sum()),
        "without_2mass_colours": int((cat.jh.isna() | cat.jk.isna()).sum()),
    }


def write_catalog(cat: pd.DataFrame, counts: dict, out_dir):
    """Write catalog.parquet and counts.json atomically (temporary names, then rename)."""
    out_dir = Path(out_dir)
    write_parquet(cat, out_dir / "catalog.parquet")
    write_json(counts, out_dir / "counts.json")
