"""Tasks that ask the model for parameters and colours (a, b, e, g, h) and the attention maps (i).

Every task takes the trained model (``StellarModel``), the test stars (``data.load_test_stars``)
and its settings, and returns (metrics, tables): metrics for ``metrics.json`` (with a
``summary`` list for summary.csv) and the tables that the figures draw from.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ..baselines.xgb import INPUT_SETS, expert_or_nan, expert_predict
from ..stats import median_mad_std
from . import science
from .data import noise_floor, reference, reference_kind, regression_metrics, summary_row
from .intervals import PerStar, mean, median, paired_ratio
from .registry import RP0_SETS

log = logging.getLogger(__name__)
LABELS = ("teff", "logg", "m_h")
XP_LOW = tuple(f"{b}{k}" for b in ("bp", "rp") for k in range(55))


def _random_subset(table: pd.DataFrame, names, k: int, rng) -> pd.DataFrame:
    """Per star, keep k of the present tokens among ``names`` chosen at random (NaN elsewhere)."""
    vals = table[list(names)].to_numpy(float)
    keys = np.where(np.isfinite(vals), rng.random(vals.shape), np.inf)
    rank = np.argsort(np.argsort(keys, axis=1), axis=1)
    return pd.DataFrame(np.where(rank < k, vals, np.nan), columns=list(names), index=table.index)


def _on_all(n: int, rows, values) -> np.ndarray:
    """Per-star values of a subset (``rows``) placed among all n stars (NaN for the others)."""
    out = np.full(n, np.nan)
    out[rows] = values
    return out


def _task_a_checks(p: dict, same: pd.DataFrame, ratio_bar: float) -> dict:
    """Task a's checks per label from its panels ``p``; ``same``: the full-XP panel on the stars of
    the last two panels (bp/rp 25-54 present)."""
    checks = {}
    spread = {t: median_mad_std(same[f"ref_{t}"])[1] for t in LABELS}  # what knowing nothing costs
    for t in LABELS:
        xgbm = p["xgboost_xp30_colours"][t]
        # the last two panels are compared with the full-XP panel on the same (bright) stars
        full = regression_metrics(same[t], same[f"ref_{t}"], same[f"{t}_err"])
        p["model_xp30_colours"][t]["on_xp_high_stars"] = full
        full_all = p["model_xp30_colours"][t]
        low, ident = p["model_xp_high"][t], p["model_xp_high_labels"][t]
        checks[t] = {
            "scatter_ratio_model_to_xgboost": full_all["robust_scatter"] / xgbm["robust_scatter"],
            "within_bar": bool(full_all["robust_scatter"] <= ratio_bar * xgbm["robust_scatter"]),
            # uninformative inputs: the scatter and the predicted sigma grow to 1.5x the full-XP panel's on the
            # same stars, or (where the full panel itself knows little) reach 80% of the label's own spread
            "uninformative_has_large_sigma": bool(
                (low["median_sigma"] >= 1.5 * full["median_sigma"] and low["robust_scatter"] >= 1.5 * full["robust_scatter"])
                or (low["median_sigma"] >= 0.8 * spread[t] and low["robust_scatter"] >= 0.8 * spread[t])
            ),
            "label_spread_on_xp_high_stars": spread[t],
            # the answer among the inputs: returned nearly unchanged (scatter about the input < 1/3 of the full-XP panel's)
            "identity_when_given": bool(ident["vs_input"]["robust_scatter"] < full["robust_scatter"] / 3),
        }
    return checks


def _task_a_summary(p: dict, d: pd.DataFrame, resid: dict, sigma: dict, has_high: np.ndarray) -> list:
    """Task a's rows of summary.csv; ``resid[panel][label]`` and ``sigma[panel][label]``: the per-star
    residuals and predicted sigmas (NaN where a star was not in the panel) on the stars of ``d``, so
    that the model and the expert are paired; ``has_high``: the stars of the bp/rp 25-54 panels."""
    rows = []
    for t in LABELS:
        for name, label in (("model_xp30_colours", "xp30+colours"), ("model_xp_high", "xp_high")):
            # calibration (z spread near 1) and the size of the predicted sigma, on the bp/rp 25-54 panel's stars
            z = resid[name][t][has_high] / sigma[name][t][has_high]
            rows.append(summary_row("spectra_to_parameters", t, f"z robust std {label} (stars of xp_high)", PerStar(z)))
            rows.append(
                summary_row(
                    "spectra_to_parameters", t, f"median sigma {label} (stars of xp_high)", PerStar(sigma[name][t][has_high], median)
                )
            )
        fl = noise_floor(d, t)
        rows.append(
            summary_row(
                "spectra_to_parameters",
                t,
                "robust_scatter xp30+colours",
                PerStar(resid["model_xp30_colours"][t]),
                PerStar(resid["xgboost_xp30_colours"][t]),
                fl,
            )
        )
        for name in ("model_xp5_colours", "model_random64", "model_xp_high"):
            rows.append(summary_row("spectra_to_parameters", t, f"robust_scatter {name[6:]}", PerStar(resid[name][t]), floor=fl))
        # the ordering of Fig. 4's top panels, paired: both input sets scored on the same stars
        fewer = paired_ratio(PerStar(resid["model_xp30_colours"][t]), PerStar(resid["model_xp5_colours"][t]))
        rows.append(summary_row("spectra_to_parameters", t, "robust_scatter xp30+colours / xp5_colours", fewer))
        rows.append(
            summary_row(
                "spectra_to_parameters", t, "robust_scatter vs input (labels given)", PerStar(resid["model_xp_high_labels_vs_input"][t])
            )
        )
    return rows


def spectra_to_parameters(model, df, cfg, experts_dir):
    """Task a (Fig. 4 / B1): Teff, logg, [M/H] from six input sets, against the truth; XGBoost as the yardstick.

    Stars: test stars with the three labels and at least one of the expert's inputs (bp/rp 0-29,
    jh, jk, bprp); coefficients beyond Gaia's relevant-bases count are missing, as in DR3, and
    both the expert and the model take the star as it is. The last two panels need at least one
    of bp/rp 25-54, which only stars with many relevant coefficients have.
    """
    rng = np.random.default_rng(cfg.seed)
    xp30 = list(INPUT_SETS["xp30_colours"])
    high = [f"{b}{k}" for b in ("bp", "rp") for k in range(25, 55)]
    sel = df[xp30].notna().any(axis=1) & df[list(LABELS)].notna().all(axis=1)
    d = df[sel].reset_index(drop=True)
    has_high = d[high].notna().any(axis=1).to_numpy()
    log.info("task a: %d test stars with labels and XP/colour inputs (%d with some of bp/rp 25-54)", len(d), has_high.sum())
    panels = {
        "model_xp30_colours": d[xp30],
        "model_xp5_colours": d[list(INPUT_SETS["xp5_colours"])],
        "model_random64": _random_subset(d, [*XP_LOW, "jh", "jk", "bprp"], cfg.random_tokens, rng),
        "model_xp_high": d.loc[has_high, high],
        "model_xp_high_labels": d.loc[has_high, high + list(LABELS)],
    }
    tables, metrics = [], {"reference": reference_kind(d), "n_stars": int(len(d)), "panels": {}}
    xgb_pred = {t: expert_predict(experts_dir, "xp30_colours", t, d) for t in LABELS}
    base = pd.DataFrame({"row": d.row, **{f"ref_{t}": reference(d, t) for t in LABELS}, **{f"label_{t}": d[t].to_numpy() for t in LABELS}})
    tables.append(base.assign(panel="xgboost_xp30_colours", **{t: xgb_pred[t] for t in LABELS}))
    metrics["panels"]["xgboost_xp30_colours"] = {t: regression_metrics(xgb_pred[t], reference(d, t)) for t in LABELS}
    resid, sigma = {"xgboost_xp30_colours": {t: xgb_pred[t] - reference(d, t) for t in LABELS}}, {}
    for name, inputs in panels.items():
        inputs = inputs[inputs.notna().any(axis=1)]  # a star must give the model something
        rows = inputs.index.to_numpy()
        pred = model.predict(inputs, LABELS, batch_size=cfg.batch_size)
        t_out = base.iloc[rows].assign(panel=name, n_inputs=inputs.notna().sum(axis=1).to_numpy())
        for t in LABELS:
            t_out[t], t_out[f"{t}_err"] = pred[t].to_numpy(), pred[f"{t}_err"].to_numpy()
        tables.append(t_out)
        m = {t: regression_metrics(pred[t], reference(d, t)[rows], pred[f"{t}_err"]) for t in LABELS}
        resid[name] = {t: _on_all(len(d), rows, pred[t].to_numpy() - reference(d, t)[rows]) for t in LABELS}
        sigma[name] = {t: _on_all(len(d), rows, pred[f"{t}_err"].to_numpy()) for t in LABELS}
        for t in LABELS:
            m[t]["median_n_inputs"] = float(np.median(t_out.n_inputs)) if len(t_out) else float("nan")
        if name == "model_xp_high_labels":  # the answer is among the inputs: score against the input too
            for t in LABELS:
                m[t]["vs_input"] = regression_metrics(pred[t], d[t].to_numpy()[rows], pred[f"{t}_err"])
            resid[f"{name}_vs_input"] = {t: _on_all(len(d), rows, pred[t].to_numpy() - d[t].to_numpy()[rows]) for t in LABELS}
        metrics["panels"][name] = m
    p = metrics["panels"]
    ratio_bar = cfg.scatter_ratio_bar
    pred_all = pd.concat(tables, ignore_index=True)
    same = pred_all[(pred_all.panel == "model_xp30_colours") & pred_all.row.isin(d.row[has_high])]
    metrics["checks"] = {"scatter_ratio_bar": ratio_bar, **_task_a_checks(p, same, ratio_bar)}
    metrics["summary"] = _task_a_summary(p, d, resid, sigma, has_high)
    return metrics, {"predictions": pred_all}


def perception(model, df, cfg, experts_dir=None):
    """Task b (Fig. 5): from bp/rp 0-29 and colours, the Kiel diagram, ln E(B-V) and the distance from
    g_fakemag and G; against the XGBoost experts for logebv and g_fakemag on the same inputs (the
    paper gives none; on a mock whose noise is not the real sky's they are the yardstick)."""
    xp30 = list(INPUT_SETS["xp30_colours"])
    d = df[df[xp30].notna().any(axis=1)].reset_index(drop=True)
    req = [*LABELS, "logebv", "g_fakemag"]
    pred = model.predict(d[xp30], req, batch_size=cfg.batch_size)
    out = pd.DataFrame({"row": d.row, "g_mag": d.g_mag})
    for t in req:
        out[t], out[f"{t}_err"], out[f"ref_{t}"] = pred[t].to_numpy(), pred[f"{t}_err"].to_numpy(), reference(d, t)
    out["distance_kpc"] = science.distance_kpc_from_fakemag(out.g_fakemag, d.g_mag)
    out["distance_frac_err"] = out.g_fakemag_err / out.g_fakemag.abs()
    if "true_distance_kpc" in d:
        out["ref_distance_kpc"] = d.true_distance_kpc.to_numpy()
    else:  # real data: the inverse zero-point-corrected parallax, from the observed g_fakemag
        out["ref_distance_kpc"] = science.distance_kpc_from_fakemag(d.g_fakemag, d.g_mag)
    frac = (out.distance_kpc - out.ref_distance_kpc) / out.ref_distance_kpc
    metrics = {
        "reference": reference_kind(d),
        "n_stars": int(len(d)),
        "targets": {t: regression_metrics(out[t], out[f"ref_{t}"], out[f"{t}_err"]) for t in req},
    }
    ebv, ebv_ref = np.exp(out.logebv), np.exp(out.ref_logebv)
    metrics["targets"]["ebv"] = regression_metrics(ebv, ebv_ref)
    metrics["targets"]["distance_fractional"] = regression_metrics(frac, np.zeros(len(frac)), out.distance_frac_err)
    xgb = {t: expert_or_nan(experts_dir, "xp30_colours", t, d) for t in ("logebv", "g_fakemag")}
    xgb_frac = (science.distance_kpc_from_fakemag(xgb["g_fakemag"], d.g_mag) - out.ref_distance_kpc) / out.ref_distance_kpc
    out["xgboost_logebv"], out["xgboost_g_fakemag"] = xgb["logebv"], xgb["g_fakemag"]
    obs_frac = (science.distance_kpc_from_fakemag(d.g_fakemag, d.g_mag) - out.ref_distance_kpc) / out.ref_distance_kpc
    floor_frac = regression_metrics(obs_frac, np.zeros(len(frac)))["robust_scatter"] if "true_distance_kpc" in d else np.nan
    t = metrics["targets"]
    metrics["summary"] = [
        summary_row(
            "perception",
            "logebv",
            "robust_scatter",
            PerStar(out.logebv - out.ref_logebv),
            PerStar(xgb["logebv"] - out.ref_logebv),
            floor=noise_floor(d, "logebv"),
        ),
        summary_row("perception", "ebv", "robust_scatter (mag)", PerStar(ebv - ebv_ref), PerStar(np.exp(xgb["logebv"]) - ebv_ref)),
        summary_row("perception", "distance", "fractional robust_scatter", PerStar(frac), PerStar(xgb_frac), floor=floor_frac),
    ]
    return metrics, {"predictions": out}


def parameters_to_parameters(model, df, cfg, experts_dir=None):
    """Task e (Fig. 10): a grid of (logg, [M/H]) in, Teff and g_fakemag out: the model's own Kiel diagram.

    Scored on the mock: Teff requested from the true (logg, [M/H]) of the test giants and dwarfs
    against their true Teff, and the offset of solar-metallicity giants from eq. 13's sequence.
    """
    g = cfg.grid
    logg = np.arange(g.logg_min, g.logg_max + 1e-9, g.logg_step)
    m_h = np.arange(g.m_h_min, g.m_h_max + 1e-9, g.m_h_step)
    lg, mh = (a.ravel() for a in np.meshgrid(logg, m_h, indexing="ij"))
    pred = model.predict(pd.DataFrame({"logg": lg, "m_h": mh}), ["teff", "g_fakemag"], batch_size=cfg.batch_size)
    grid = pd.DataFrame(
        {
            "logg": lg,
            "m_h": mh,
            "teff": pred.teff.to_numpy(),
            "teff_err": pred.teff_err.to_numpy(),
            "g_fakemag": pred.g_fakemag.to_numpy(),
            "log_lum": science.log_luminosity_g(pred.g_fakemag.to_numpy()),
        }
    )
    d = df[df.logg.notna() & df.m_h.notna() & df.teff.notna()].reset_index(drop=True)
    observed = pd.DataFrame(
        {
            "teff": reference(d, "teff"),
            "logg": reference(d, "logg"),
            "m_h": reference(d, "m_h"),
            "log_lum": science.log_luminosity_g(reference(d, "g_fakemag")),
        }
    )
    back = model.predict(observed[["logg", "m_h"]], ["teff"], batch_size=cfg.batch_size)
    giants = observed.logg.to_numpy() < 3.5
    metrics = {
        "reference": reference_kind(d),
        "grid_points": int(len(grid)),
        "teff_from_logg_m_h": {
            "giants": regression_metrics(back.teff[giants], observed.teff[giants], back.teff_err[giants]),
            "dwarfs": regression_metrics(back.teff[~giants], observed.teff[~giants], back.teff_err[~giants]),
        },
    }
    solar_rgb = (grid.m_h.abs() < 0.011) & grid.logg.between(1.5, 3.5)
    metrics["solar_giants_minus_eq13_k"] = float(np.median(grid.teff[solar_rgb] - science.teff_rgb(grid.logg[solar_rgb])))
    metrics["median_teff_sigma_k"] = {
        "giants": float(np.median(grid.teff_err[grid.logg < 3.5])),
        "dwarfs": float(np.median(grid.teff_err[grid.logg >= 3.5])),
    }
    back_resid = back.teff.to_numpy() - observed.teff.to_numpy()
    metrics["summary"] = [
        summary_row("parameters_to_parameters", "teff", f"robust_scatter from logg, m_h ({k})", PerStar(back_resid[sel]))
        for k, sel in (("giants", giants), ("dwarfs", ~giants))
    ]
    return metrics, {"grid": grid, "observed": observed}


NEVER_REQUESTED_EXPERT = "xp32"  # bp/rp 0-31: the XGBoost expert on the task's mapping (registry.TASKS)


def never_requested(model, df, cfg, experts_dir=None):
    """Task g (Fig. 14): bprp and jk, never asked for in training, requested from XP alone (the star's
    bp/rp 0-31), beside an XGBoost expert trained for that mapping (``xp32``)."""
    xp = list(INPUT_SETS[NEVER_REQUESTED_EXPERT])
    d = df[df[xp].notna().any(axis=1)].reset_index(drop=True)
    req = ["bprp", "jk"]
    pred = model.predict(d[xp], req, batch_size=cfg.batch_size)
    out = pd.DataFrame({"row": d.row})
    metrics = {"reference": reference_kind(d), "n_stars": int(len(d)), "inputs": "bp0-31, rp0-31", "targets": {}, "summary": []}
    xgb = {t: expert_or_nan(experts_dir, NEVER_REQUESTED_EXPERT, t, d) for t in req}  # an expert trained on the mapping
    for t in req:
        out[t], out[f"{t}_err"], out[f"ref_{t}"], out[f"obs_{t}"], out[f"xgboost_{t}"] = (
            pred[t].to_numpy(),
            pred[f"{t}_err"].to_numpy(),
            reference(d, t),
            d[t].to_numpy(),
            xgb[t],
        )
        metrics["targets"][t] = regression_metrics(out[t], out[f"ref_{t}"], out[f"{t}_err"])
        metrics["summary"].append(
            summary_row(
                "never_requested",
                t,
                "robust_scatter",
                PerStar(out[t] - out[f"ref_{t}"]),
                PerStar(xgb[t] - out[f"ref_{t}"]),
                floor=noise_floor(d, t),
            )
        )
        # what knowing nothing about the star gives: the spread of the colour over the test stars
        metrics["summary"].append(summary_row("never_requested", t, "robust spread over the stars", PerStar(out[f"ref_{t}"])))
    return metrics, {"predictions": out}


def rp0_experts(model, df, cfg, experts_dir):
    """Task h (Fig. 13): rp0 from (teff, logg, m_h), + (jh, jk), + bprp; the model against an XGBoost expert each."""
    need = list(INPUT_SETS["params_2mass_bprp"]) + ["rp0"]
    d = df[df[need].notna().all(axis=1)].reset_index(drop=True)
    tables, metrics = [], {"reference": reference_kind(d), "n_stars": int(len(d)), "sets": {}, "summary": []}
    ref = reference(d, "rp0")
    resid = {}
    for s in RP0_SETS:
        feats = list(INPUT_SETS[s])
        pred = model.predict(d[feats], ["rp0"], batch_size=cfg.batch_size)
        xg = expert_predict(experts_dir, s, "rp0", d)
        resid[s] = PerStar(pred.rp0.to_numpy() - ref)
        tables.append(
            pd.DataFrame(
                {"row": d.row, "set": s, "ref_rp0": ref, "rp0": pred.rp0.to_numpy(), "rp0_err": pred.rp0_err.to_numpy(), "xgboost_rp0": xg}
            )
        )
        mm, mx = regression_metrics(pred.rp0, ref, pred.rp0_err), regression_metrics(xg, ref)
        metrics["sets"][s] = {"model": mm, "xgboost": mx}
        metrics["summary"].append(
            summary_row("rp0_experts", "rp0", f"robust_scatter {s}", resid[s], PerStar(xg - ref), noise_floor(d, "rp0"))
        )
    # Fig. 13's ordering, paired on the same stars: BP-RP added to parameters + 2MASS
    gain = paired_ratio(resid["params_2mass_bprp"], resid["params_2mass"])
    metrics["summary"].append(summary_row("rp0_experts", "rp0", "robust_scatter params_2mass_bprp / params_2mass", gain))
    return metrics, {"predictions": pd.concat(tables, ignore_index=True)}


ATTENTION_REQUESTS = ("teff", "m_h", "bp0", "rp0")
ATTENTION_INPUTS = ("teff", "m_h", "logebv")


def attention(model, df, cfg, experts_dir=None):
    """Task i (Fig. 12): cross-attention of the requests teff, m_h, bp0, rp0 to the inputs teff, m_h, logebv.

    Weights are averaged over heads and decoder blocks, and over test stars (their true Teff and
    [M/H]) with E(B-V) set to 0 and to a high value. Each request's weights over the three
    inputs sum to one (columns of the paper's figure).
    """
    ebv_high = float(cfg.ebv_high)
    d = df[df.teff.notna() & df.m_h.notna()].reset_index(drop=True).iloc[: cfg.n_stars]
    maps, rows, per_star = {}, [], {}
    for case, ebv in (("zero", 0.0), ("high", ebv_high)):
        inputs = pd.DataFrame(
            {"teff": reference(d, "teff"), "m_h": reference(d, "m_h"), "logebv": np.full(len(d), float(science.log_ebv_c19(ebv)))}
        )
        _, attn = model.predict(inputs, ATTENTION_REQUESTS, return_attention=True, batch_size=cfg.batch_size)
        # attn: (stars, requests, blocks, context); the inputs sit first, in column order
        per_star[case] = attn[..., : len(ATTENTION_INPUTS)].mean(axis=2)  # (stars, requests, inputs)
        w = per_star[case].mean(axis=0)  # (requests, inputs)
        maps[case] = w
        for i, r in enumerate(ATTENTION_REQUESTS):
            rows += [{"case": case, "ebv": ebv, "request": r, "input": x, "weight": float(w[i, j])} for j, x in enumerate(ATTENTION_INPUTS)]
    k = {x: j for j, x in enumerate(ATTENTION_INPUTS)}
    z, h = maps["zero"], maps["high"]
    metrics = {
        "ebv_high": ebv_high,
        "n_stars": int(len(d)),
        "weights": {
            c: {r: dict(zip(ATTENTION_INPUTS, map(float, m[i]))) for i, r in enumerate(ATTENTION_REQUESTS)} for c, m in maps.items()
        },
        "checks": {
            "teff_attends_teff": bool(z[0].argmax() == k["teff"] and h[0].argmax() == k["teff"]),
            "m_h_attends_m_h": bool(z[1].argmax() == k["m_h"] and h[1].argmax() == k["m_h"]),
            "bp0_rp0_shift_to_logebv_at_high_extinction": bool((h[2:, k["logebv"]] > z[2:, k["logebv"]]).all()),
        },
    }
    metrics["summary"] = [
        summary_row(
            "attention",
            r,
            "logebv weight high - zero E(B-V)",
            PerStar(per_star["high"][:, i, k["logebv"]] - per_star["zero"][:, i, k["logebv"]], mean),
        )
        for i, r in enumerate(ATTENTION_REQUESTS)
    ]
    # Fig. 12's switch: which input weighs more, Teff or E(B-V), at zero and at high extinction
    for case, first, second in (("zero", "teff", "logebv"), ("high", "logebv", "teff")):
        metrics["summary"] += [
            summary_row(
                "attention",
                r,
                f"{first} - {second} weight at {case} E(B-V)",
                PerStar(per_star[case][:, i, k[first]] - per_star[case][:, i, k[second]], mean),
            )
            for i, r in enumerate(ATTENTION_REQUESTS)
        ]
    return metrics, {"weights": pd.DataFrame(rows)}
