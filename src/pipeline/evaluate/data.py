"""What every evaluation task shares: the test stars with their truth, metrics, and the cache files.

The test split of the token store, in physical units, is joined to the catalog (apogee_id, G)
and, on the mock sky, to the truth the mock injected: ``true_<token>`` columns for the labels,
colours, ln E(B-V), g_fakemag and the G-normalised noise-free XP coefficients, and
``true_distance_kpc``. On real data there is no truth: tasks compare with the observed tokens
(APOGEE labels, measured coefficients) and say so (``reference: labels``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..gaia.photometry import g_flux_e_per_s
from ..gaia.xp import N_COEFF
from ..stats import median_mad_std
from ..tokens.store import split_table
from . import science
from .intervals import interval_columns

XP_TOKENS = tuple(f"{b}{k}" for b in ("bp", "rp") for k in range(N_COEFF))


def truth_tokens(truth: pd.DataFrame) -> pd.DataFrame:
    """The mock's truth expressed as tokens (``true_<token>``), from truth.parquet's columns."""
    out = pd.DataFrame(index=truth.index)
    for t in ("teff", "logg", "m_h"):
        out[f"true_{t}"] = truth[t].to_numpy(float)
    out["true_logebv"] = science.log_ebv_c19(truth.ebv_c19.to_numpy(float))
    out["true_g_fakemag"] = science.fakemag(truth.parallax_true_mas.to_numpy(float), truth.g_true.to_numpy(float))
    out["true_bprp"] = truth.bp_true.to_numpy(float) - truth.rp_true.to_numpy(float)
    out["true_jh"] = truth.j_true.to_numpy(float) - truth.h_true.to_numpy(float)
    out["true_jk"] = truth.j_true.to_numpy(float) - truth.k_true.to_numpy(float)
    out["true_distance_kpc"] = truth.distance_kpc.to_numpy(float)
    for t, col in (("mass", "mass"), ("age", "age"), ("radius_rsun", "radius")):  # evolutionary truth (mass_age task)
        if col in truth:
            out[f"true_{t}"] = truth[col].to_numpy(float)
    f_g = g_flux_e_per_s(truth.g_true.to_numpy(float))[:, None]
    for b in ("bp", "rp"):
        coeffs = np.stack(truth[f"{b}_coefficients_true"].to_numpy()) / f_g
        out = pd.concat([out, pd.DataFrame(coeffs, index=truth.index, columns=[f"true_{b}{k}" for k in range(N_COEFF)])], axis=1)
    return out


def load_test_stars(store_path, catalog_path, truth_path=None) -> pd.DataFrame:
    """Test-split stars: every token and its error, source_id, row, apogee_id, G and (mock) the truth."""
    df = split_table(store_path, "test")
    cat = pd.read_parquet(catalog_path, columns=["apogee_id", "phot_g_mean_mag"])
    rows = df.row.to_numpy()
    df["apogee_id"] = cat.apogee_id.to_numpy()[rows]
    df["g_mag"] = cat.phot_g_mean_mag.to_numpy()[rows]
    if truth_path is not None:
        truth = pd.read_parquet(truth_path).drop_duplicates("apogee_id").set_index("apogee_id")
        missing = ~df.apogee_id.isin(truth.index)
        if missing.any():
            raise ValueError(
                f"{truth_path}: {int(missing.sum())} test stars (e.g. {df.apogee_id[missing].iloc[0]}) have no truth row; "
                "the truth file must come from the sky that made the catalog"
            )
        tt = truth_tokens(truth.loc[df.apogee_id])
        df = pd.concat([df, tt.set_index(df.index)], axis=1)
    df.attrs["token_store"] = str(store_path)  # training_stars reads the train split of the same store
    return df


def training_stars(test_stars: pd.DataFrame, tokens) -> pd.DataFrame:
    """The training split of the token store the test stars came from (``load_test_stars``), for
    settings that must describe what the model saw rather than the stars it is scored on."""
    store = test_stars.attrs.get("token_store")
    if store is None:
        raise ValueError("these test stars do not name their token store; load them with evaluate.data.load_test_stars")
    return split_table(store, "train", tokens)


def has_truth(df) -> bool:
    return "true_teff" in df.columns


def reference(df, token):
    """The values to score a prediction of ``token`` against: the truth when known, else the observed token."""
    return df[f"true_{token}"].to_numpy(float) if has_truth(df) and f"true_{token}" in df else df[token].to_numpy(float)


def reference_kind(df) -> str:
    return "truth" if has_truth(df) else "labels"


def regression_metrics(pred, ref, sigma=None) -> dict:
    """Robust scatter (1.4826 MAD), bias (median), 16/50/84th percentiles of pred - ref, and with
    ``sigma`` the median predicted sigma and the spread of z = (pred - ref) / sigma (near 1 when calibrated)."""
    pred, ref = np.asarray(pred, float), np.asarray(ref, float)
    ok = np.isfinite(pred) & np.isfinite(ref)
    resid = pred[ok] - ref[ok]
    bias, scatter = median_mad_std(resid)
    p = np.percentile(resid, [16, 50, 84]) if resid.size else [np.nan] * 3
    out = {"n": int(ok.sum()), "bias": bias, "robust_scatter": scatter, "p16": float(p[0]), "p50": float(p[1]), "p84": float(p[2])}
    if sigma is not None:
        s = np.asarray(sigma, float)[ok]
        out["median_sigma"] = float(np.median(s)) if s.size else float("nan")
        out["z_robust_std"] = median_mad_std(resid / s)[1]
    return out


def noise_floor(df, token, rows=None) -> float:
    """Robust scatter of the observed token about the truth: how well the data themselves know it (mock only)."""
    if not has_truth(df) or f"true_{token}" not in df or token not in df:
        return float("nan")
    d = df if rows is None else df.loc[rows]
    return median_mad_std(d[token].to_numpy(float) - d[f"true_{token}"].to_numpy(float))[1]


def summary_row(task, target, metric, model, xgboost=None, floor=float("nan")) -> dict:
    """One row of summary.csv. ``model`` and ``xgboost`` are numbers or ``intervals.PerStar`` (the
    per-star values and their statistic): those get a bootstrap interval over the stars, and the
    ratio model / expert a paired one when both are scored on the same stars."""
    return {"task": task, "target": target, "metric": metric, **interval_columns(model, xgboost), "noise_floor": float(floor)}


# -- the cache: one Parquet file per task holding its named tables ----------------------------
def read_metrics(path) -> dict:
    return json.loads(Path(path).read_text())
