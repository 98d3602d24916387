"""Validation of the catalog against the mock sky's truth (``validation.json``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..stats import median_mad_std
from .extinction import LOG_EBV_FLOOR

TRUTH_COLUMNS = ("apogee_id", "source_id", "parallax_true_mas", "ebv_c19", "has_xp", "labels_good", "in_gaia", "has_2mass", "teff")


def validate_catalog(cat: pd.DataFrame, truth: pd.DataFrame, zero_point_g_max: float = 17.0, zero_point_bar_uas: float = 3.0) -> dict:
    """Zero-point residual, logebv scatter and category counts of the catalog against the truth."""
    t = truth.set_index("apogee_id").reindex(cat.apogee_id)
    plx_ok = (
        cat.parallax_usable.to_numpy() & (cat.phot_g_mean_mag.to_numpy() < zero_point_g_max) & np.isfinite(t.parallax_true_mas.to_numpy())
    )
    resid = (cat.parallax_corrected_mas.to_numpy() - t.parallax_true_mas.to_numpy())[plx_ok]
    raw = (cat.parallax_corrected_mas.to_numpy() + cat.zp_offset_mas.to_numpy() - t.parallax_true_mas.to_numpy())[plx_ok]
    med_uas = float(np.median(resid) * 1000) if resid.size else float("nan")
    true_log = np.log(np.where(t.ebv_c19.to_numpy() > 0, t.ebv_c19.to_numpy(), np.exp(LOG_EBV_FLOOR)))
    le_ok = np.isfinite(cat.logebv.to_numpy())
    d_le = cat.logebv.to_numpy()[le_ok] - true_log[le_ok]
    le_med, le_scatter = median_mad_std(d_le)
    pull_med, pull_std = median_mad_std(d_le / np.maximum(cat.logebv_err.to_numpy()[le_ok], 1e-3))
    pos = cat.match.to_numpy() == "position"
    pos_right = int((cat.source_id.to_numpy()[pos] == t.source_id.to_numpy()[pos]).sum())
    sid = cat.match.to_numpy() == "source_id"
    return {
        "parallax_zero_point": {
            "median_corrected_minus_true_uas": med_uas,
            "median_uncorrected_minus_true_uas": float(np.median(raw) * 1000) if raw.size else float("nan"),
            "n_stars": int(plx_ok.sum()),
            "g_max": zero_point_g_max,
            "bar_uas": zero_point_bar_uas,
            "pass": bool(abs(med_uas) < zero_point_bar_uas),
        },
        "logebv": {
            "median_minus_true": le_med,
            "robust_scatter_vs_true": le_scatter,
            "pull_median": pull_med,
            "pull_robust_std": pull_std,
            "n_stars": int(le_ok.sum()),
        },
        "crossmatch": {
            "by_source_id": int(sid.sum()),
            "by_position": int(pos.sum()),
            "by_position_correct": pos_right,
            "by_source_id_correct": int((cat.source_id.to_numpy()[sid] == t.source_id.to_numpy()[sid]).sum()),
        },
        "counts_vs_truth": {
            "stars": {"catalog": int(len(cat)), "truth": int(len(truth))},
            "with_xp": {
                "catalog": int(cat.has_xp.sum()),
                "truth_published": int(truth.has_xp.sum()),
                "note": "catalog applies the G, BP-RP and excess cuts on top of publication",
            },
            "with_good_labels": {
                "catalog": int(cat[["teff", "logg", "m_h"]].notna().all(axis=1).sum()),
                "truth": int(truth.labels_good.sum()),
            },
            "in_gaia": {"catalog": int((cat.match != "none").sum()), "truth": int(truth.in_gaia.sum())},
            "with_2mass": {"catalog": int(cat.jk.notna().sum()), "truth": int(truth.has_2mass.sum())},
        },
    }
