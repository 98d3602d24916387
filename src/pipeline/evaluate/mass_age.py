"""Mass and age of evolved stars (Zhang et al. 2026): the model with mass and age tokens against an
XGBoost expert on the same inputs, scored on held-out giants.

Two input sets, as in Zhang et al.'s Fig. 5: XP plus colours (bp/rp 0-29, J-H, J-K, BP-RP; the
inputs of task a) and XP plus colours plus the APOGEE parameters (bp/rp 0-28, the colours, Teff,
logg, [M/H]: 64 tokens, the model's context). Scores against the mock's true mass (Msun) and age
(Gyr) when the mock is known, else against the catalogue's values; the catalogue's own scatter
about the truth is reported as its noise floor. Same contract as ``parameters``.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ..baselines.xgb import INPUT_SETS, expert_predict
from . import science
from .data import noise_floor, reference, reference_kind, regression_metrics, summary_row
from .intervals import PerStar
from .registry import MASS_AGE_SETS

log = logging.getLogger(__name__)
TARGETS = ("mass", "age")
PAPER = {"mass": 0.114, "age": 1.334}  # Zhang et al. (2026), real APOGEE DistMass giants: Msun, Gyr


def coverage(pred, ref, sigma, k: float = 1.0) -> float:
    """Fraction of stars whose reference lies within k predicted sigma of the prediction (0.683 for k = 1 if calibrated)."""
    pred, ref, sigma = (np.asarray(a, float) for a in (pred, ref, sigma))
    ok = np.isfinite(pred) & np.isfinite(ref) & np.isfinite(sigma)
    return float(np.mean(np.abs(pred[ok] - ref[ok]) <= k * sigma[ok])) if ok.any() else float("nan")


def _summary(tables: list, refs: dict, floor: dict) -> list:
    """The task's rows of summary.csv from its panels' tables: model and expert paired on the same
    giants for each input set, and the z spread of the XP + colours panel."""
    by_panel = {tb.panel.iloc[0]: tb for tb in tables}
    rows = [
        summary_row(
            "mass_age",
            t,
            f"robust_scatter {s}",
            PerStar(by_panel[f"model_{s}"][t].to_numpy() - refs[t]),
            PerStar(by_panel[f"xgboost_{s}"][t].to_numpy() - refs[t]),
            floor[t],
        )
        for s in MASS_AGE_SETS
        for t in TARGETS
    ]
    m30 = by_panel["model_xp30_colours"]
    return rows + [
        summary_row("mass_age", t, "z robust std xp30_colours", PerStar((m30[t].to_numpy() - refs[t]) / m30[f"{t}_err"].to_numpy()))
        for t in TARGETS
    ]


def mass_age(model, df, cfg, experts_dir):
    """Mass and age of test-split giants from the two input sets; model, expert, calibration and figure tables."""
    for t in TARGETS:
        if t not in model.token_index:
            raise ValueError(
                f"the model in use has no {t!r} token: the mass_age task needs the model trained with mass_age "
                "enabled (results/models/<mass_age.train.name>)"
            )
    sel = df.mass.notna() & df.age.notna() & df[list(INPUT_SETS["xp30_colours"])].notna().any(axis=1)
    d = df[sel].reset_index(drop=True)
    if len(d) < 10:
        raise ValueError(f"mass_age: only {len(d)} test-split stars have mass, age and XP; the catalogue join or cuts left too few")
    log.info("mass_age: %d test giants with mass, age and XP/colour inputs", len(d))
    refs = {t: reference(d, t) for t in TARGETS}
    base = pd.DataFrame(
        {
            "row": d.row,
            "teff": d.teff,
            "logg": d.logg,
            "m_h": d.m_h,
            **{f"ref_{t}": refs[t] for t in TARGETS},
            **{f"label_{t}": d[t].to_numpy() for t in TARGETS},
        }
    )
    base["log_l_lsun"] = (
        science.log_luminosity_from_radius(d.true_radius_rsun, d.true_teff)
        if "true_radius_rsun" in d
        else science.log_luminosity_from_mass(refs["mass"], d.teff, d.logg)
    )
    metrics = {
        "reference": reference_kind(d),
        "n_stars": int(len(d)),
        "units": {"mass": "Msun", "age": "Gyr"},
        "zhang_2026_real_data": PAPER,
        "panels": {},
    }
    tables = []
    for s in MASS_AGE_SETS:
        inputs = d[list(INPUT_SETS[s])]
        pred = model.predict(inputs, TARGETS, batch_size=cfg.batch_size)
        xgb = {t: expert_predict(experts_dir, s, t, d) for t in TARGETS}
        t_model = base.assign(
            panel=f"model_{s}", **{t: pred[t].to_numpy() for t in TARGETS}, **{f"{t}_err": pred[f"{t}_err"].to_numpy() for t in TARGETS}
        )
        t_xgb = base.assign(panel=f"xgboost_{s}", **xgb)
        tables += [t_model, t_xgb]
        pm, px = {}, {}
        for t in TARGETS:
            pm[t] = regression_metrics(t_model[t], refs[t], t_model[f"{t}_err"])
            pm[t]["coverage_1sigma"] = coverage(t_model[t], refs[t], t_model[f"{t}_err"])
            pm[t]["fractional_robust_scatter"] = regression_metrics(t_model[t] / refs[t], np.ones(len(d)))["robust_scatter"]
            px[t] = regression_metrics(xgb[t], refs[t])
            px[t]["fractional_robust_scatter"] = regression_metrics(xgb[t] / refs[t], np.ones(len(d)))["robust_scatter"]
        metrics["panels"][f"model_{s}"], metrics["panels"][f"xgboost_{s}"] = pm, px
    p = metrics["panels"]
    metrics["noise_floor"] = {t: noise_floor(d, t) for t in TARGETS}
    metrics["checks"] = {
        t: {
            f"scatter_ratio_model_to_xgboost_{s}": p[f"model_{s}"][t]["robust_scatter"] / p[f"xgboost_{s}"][t]["robust_scatter"]
            for s in MASS_AGE_SETS
        }
        for t in TARGETS
    }
    metrics["summary"] = _summary(tables, refs, metrics["noise_floor"])
    return metrics, {"predictions": pd.concat(tables, ignore_index=True)}
