"""Join APOGEE allStar to Gaia on the source id (never by row order), by position where it is missing."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

ALLSTAR_COLUMNS = (
    "APOGEE_ID",
    "GAIAEDR3_SOURCE_ID",
    "RA",
    "DEC",
    "GLON",
    "GLAT",
    "SNR",
    "STARFLAG",
    "ASPCAPFLAG",
    "TEFF",
    "TEFF_ERR",
    "LOGG",
    "LOGG_ERR",
    "M_H",
    "M_H_ERR",
    "J",
    "J_ERR",
    "H",
    "H_ERR",
    "K",
    "K_ERR",
)
GAIA_COLUMNS = (
    "source_id",
    "ra",
    "dec",
    "parallax",
    "parallax_error",
    "ruwe",
    "phot_g_mean_mag",
    "phot_bp_mean_mag",
    "phot_rp_mean_mag",
    "phot_bp_mean_flux_over_error",
    "phot_rp_mean_flux_over_error",
    "bp_rp",
    "phot_bp_rp_excess_factor",
    "nu_eff_used_in_astrometry",
    "pseudocolour",
    "ecl_lat",
    "astrometric_params_solved",
)


def best_visit_per_star(allstar: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """One row per APOGEE_ID: the highest-SNR one (ties: the first in file order)."""
    if allstar.APOGEE_ID.eq("").any():
        raise ValueError(f"allStar: {int(allstar.APOGEE_ID.eq('').sum())} rows have an empty APOGEE_ID")
    order = allstar.assign(_row=np.arange(len(allstar))).sort_values(["APOGEE_ID", "SNR", "_row"], ascending=[True, False, True])
    best = order.drop_duplicates("APOGEE_ID", keep="first").sort_values("_row").drop(columns="_row").reset_index(drop=True)
    return best, len(allstar) - len(best)


def match_by_position(ra_deg, dec_deg, cat_ra_deg, cat_dec_deg, radius_arcsec: float):
    """Index into the catalogue of the nearest source within ``radius_arcsec`` (-1 where none)."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    if len(ra_deg) == 0 or len(cat_ra_deg) == 0:
        return np.full(len(ra_deg), -1)
    idx, sep, _ = SkyCoord(ra_deg * u.deg, dec_deg * u.deg).match_to_catalog_sky(SkyCoord(cat_ra_deg * u.deg, cat_dec_deg * u.deg))
    return np.where(sep.arcsec <= radius_arcsec, idx, -1)


def crossmatch(allstar: pd.DataFrame, gaia: pd.DataFrame, radius_arcsec: float = 1.0) -> pd.DataFrame:
    """allStar rows (one per star) with their gaia_source columns and how they were matched.

    ``match`` is ``source_id`` when GAIAEDR3_SOURCE_ID is found in gaia_source, ``position``
    when the id is missing (0, -1 or null) and a source lies within ``radius_arcsec``, else ``none``.
    An allStar id that is set but absent from gaia_source stays unmatched (it is not guessed).
    """
    a = allstar.copy()
    sid = pd.to_numeric(a.GAIAEDR3_SOURCE_ID, errors="coerce").fillna(0).astype(np.int64)
    a["source_id"] = np.where(sid > 0, sid, 0)
    g = gaia.set_index("source_id", drop=False)
    found = a.source_id.isin(g.index) & (a.source_id > 0)
    a["match"] = np.where(found, "source_id", "none")
    need = (a.source_id <= 0).to_numpy()
    if need.any():
        idx = match_by_position(a.RA.to_numpy()[need], a.DEC.to_numpy()[need], gaia.ra.to_numpy(), gaia.dec.to_numpy(), radius_arcsec)
        got = idx >= 0
        rows = np.nonzero(need)[0]
        a.loc[rows[got], "source_id"] = gaia.source_id.to_numpy()[idx[got]]
        a.loc[rows[got], "match"] = "position"
        log.info(
            "crossmatch: %d stars without a source id, %d matched by position within %.2f arcsec", need.sum(), got.sum(), radius_arcsec
        )
    taken = a.source_id[a.match != "none"]
    dup = taken[taken.duplicated()].unique()
    if dup.size:
        log.warning(
            "crossmatch: %d Gaia sources claimed by more than one APOGEE star (e.g. %s); keeping the highest-SNR star",
            dup.size,
            dup[:3].tolist(),
        )
        matched = a[a.match != "none"].sort_values("SNR", ascending=False)
        losers = matched.index[matched.duplicated("source_id")]
        a.loc[losers, "match"] = "none"
        a.loc[losers, "source_id"] = 0
    gcols = [c for c in gaia.columns if c != "source_id"]
    merged = a.merge(gaia[["source_id", *gcols]].rename(columns={"ra": "gaia_ra", "dec": "gaia_dec"}), how="left", on="source_id")
    merged.loc[merged.match == "none", "source_id"] = 0
    return merged
