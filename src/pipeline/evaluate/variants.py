"""The claims' spread over training seeds and their dependence on the training budget.

Two workflow targets, not part of the default run (``workflow/rules/claims.smk``), retrain the base
model with other settings and judge the claims of the base model's tasks on each:

- ``seeds``: the base model with each of ``claims.seeds`` (``train.seed``), and, when the SpectraFM
  branch is on, SpectraFM's stages and FCNN with the same seed (``spectrafm_seeded``); ``seeds.csv``
  gives each claim's value per seed, the mean and the seed-to-seed standard deviation (the spread a
  single run's number carries beside its bootstrap interval over stars).
- ``scaling``: the base model at several budgets (epochs of one cosine cycle) and sizes
  (``claims.scaling.presets``); ``scaling.csv`` gives each scaling quantity per point with its
  interval and the budget (star-samples seen, from the model's history; multiply-adds follow from
  the parameter count), and ``scaling.png`` draws them against the budget.

- ``experiments``: the base model with each of ``claims.experiments`` (a name and overrides of the
  ``train`` block: a training recipe to test against the default, e.g. ``resident: stream``);
  ``experiments.csv`` sets each claim's value and verdict per experiment beside the base model's.

A variant is a name and the overrides of the ``train`` block; the one whose settings equal the base
model's *is* the base model (no second training).
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ..io.atomic import atomic_path
from .verdicts import REPRODUCED, seeds_verdict

# the claims' tasks that the base model answers (mass/age, search and SpectraFM have their own models)
BASE_MODEL_TASKS = (
    "spectra_to_parameters",
    "perception",
    "spectra_to_spectra",
    "extinction_curve",
    "never_requested",
    "rp0_experts",
    "attention",
)

# what the scaling figure draws: (label, summary row (task, target, metric), number, the line it is compared with)
SCALING_QUANTITIES = (
    ("task a Teff / XGBoost", ("spectra_to_parameters", "teff", "robust_scatter xp30+colours"), "ratio", 1.0),
    ("task a logg / XGBoost", ("spectra_to_parameters", "logg", "robust_scatter xp30+colours"), "ratio", 1.0),
    ("task a [M/H] / XGBoost", ("spectra_to_parameters", "m_h", "robust_scatter xp30+colours"), "ratio", 1.0),
    ("task h rp0 (+BP-RP) / XGBoost", ("rp0_experts", "rp0", "robust_scatter params_2mass_bprp"), "ratio", 1.0),
    ("distance scatter / XGBoost", ("perception", "distance", "fractional robust_scatter"), "ratio", 1.0),
    ("extinction curve RMS", ("extinction_curve", "R(lambda)", "rms vs injected 400-1000 nm"), "model", 0.35),
)


# the tasks the scaling figure needs (a scaling point is evaluated on these only)
SCALING_TASKS = tuple(dict.fromkeys(row[0] for _, row, _, _ in SCALING_QUANTITIES))


def seed_variants(seeds) -> dict[str, dict]:
    """{variant name: train overrides} for the seeds target."""
    return {f"seed{int(s)}": {"seed": int(s)} for s in seeds}


def scaling_variants(scaling: dict) -> dict[str, dict]:
    """{variant name: train overrides} for the scaling target: each preset at each of its epochs, one
    cosine cycle, with the preset's own train overrides (``preset_train``, e.g. a wider network's lr)."""
    out = {}
    for p in scaling["presets"]:
        own = (scaling.get("preset_train") or {}).get(p, {})
        for e in (scaling.get("preset_epochs") or {}).get(p, scaling["epochs"]):
            out[f"{p}_e{int(e)}"] = {"preset": p, "epochs_per_cycle": int(e), "cycles": 1, **own}
    return out


def experiment_variants(experiments: dict) -> dict[str, dict]:
    """{variant name: train overrides} for the experiments target (``exp_<name>``); an experiment's
    ``spectrafm`` key is SpectraFM's part (``spectrafm_experiments``), not the base model's."""
    return {f"exp_{name}": {k: v for k, v in o.items() if k != "spectrafm"} for name, o in (experiments or {}).items()}


def spectrafm_experiments(experiments: dict, spectrafm: dict) -> dict[str, dict]:
    """{variant name: SpectraFM settings} of the experiments that change SpectraFM: the ``spectrafm``
    block with the experiment's ``spectrafm`` overrides on every stage (e.g. ``{mix: store}``, the
    sensitivity of the orderings to the stages' mix of stars). Its FCNN follows finetune_fe's."""
    out = {}
    for name, o in (experiments or {}).items():
        if o.get("spectrafm"):
            stages = {stage: _override(st, o["spectrafm"]) for stage, st in spectrafm["stages"].items()}
            out[f"exp_{name}"] = {**spectrafm, "stages": stages}
    return out


# StageConfig's defaults of the settings an experiment may override, restated where torch is not imported
# (a test keeps them equal): an override equal to a stage's value, said or default, changes nothing
SPECTRAFM_STAGE_DEFAULTS = {"mix": "survey", "validation": "stage", "keep": "last"}


def _override(stage: dict, overrides: dict) -> dict:
    """A stage's settings with the overrides that change it (equal to its value, said or default: left out)."""
    changed = {k: v for k, v in overrides.items() if stage.get(k, SPECTRAFM_STAGE_DEFAULTS.get(k)) != v}
    return {**stage, **changed}


def trains_its_own(variant_stages: dict, default_stages: dict, stage: str) -> bool:
    """Whether a SpectraFM variant's ``stage`` differs from the default run's: its settings or those
    of any stage it starts from (its ``init`` chain). One that does not is the default run's model."""
    while stage:
        if variant_stages.get(stage) != default_stages.get(stage):
            return True
        stage = variant_stages[stage].get("init")
    return False


SPECTRAFM_SEED_DEFAULT = 0  # a SpectraFM stage's seed when the config gives none (StageConfig.seed; a test keeps them equal)


def spectrafm_seeded(spectrafm: dict, seed: int) -> dict | None:
    """SpectraFM's settings (the ``spectrafm`` block) retrained with ``seed`` for the seeds target:
    every stage's seed and the FCNN's, which also draw finetune_fe's 100 iron-rich stars anew (the
    paper's finding should not hang on which 100). None when those are the configured seeds: that
    seed variant is the default run's SpectraFM itself (results/spectrafm, no second training)."""
    stages, fcnn = spectrafm["stages"], spectrafm.get("fcnn") or {}
    current = [int(st.get("seed", SPECTRAFM_SEED_DEFAULT)) for st in stages.values()]
    current.append(int(fcnn.get("seed", stages["finetune_fe"].get("seed", SPECTRAFM_SEED_DEFAULT))))
    if all(c == int(seed) for c in current):
        return None
    return {"stages": {name: {**st, "seed": int(seed)} for name, st in stages.items()}, "fcnn": {**fcnn, "seed": int(seed)}}


def is_base(train: dict, overrides: dict) -> bool:
    """Whether a variant's settings are the base model's own (then the base model serves as it)."""
    merged = {**train, **overrides}
    keys = set(overrides) | {"cycles", "epochs_per_cycle"}
    return all(merged.get(k) == train.get(k) for k in keys)


def budget(model_dir) -> dict:
    """What a trained model cost: epochs, star-samples seen (sum over epochs of seconds x stars/s),
    its parameters, and multiply-adds ~ 2 x parameters x star-samples (a forward and backward pass
    per token is ~6 x parameters; the constant does not move a curve)."""
    d = Path(model_dir)
    hist = pd.read_csv(d / "history.csv")
    meta = json.loads((d / "config.json").read_text())
    samples = float((hist.seconds * hist.stars_per_s).sum())
    n_params = int(meta.get("n_parameters", 0))
    return {
        "epochs": int(len(hist)),
        "star_samples": samples,
        "n_parameters": n_params,
        "train_seconds": float(hist.seconds.sum()),
        "best_val_loss": float(hist.val_loss.min()),
        "compute_flop": 6.0 * n_params * samples,
    }


def side_by_side(tables: dict) -> pd.DataFrame:
    """One row per claim, and for each ``{name: claims table}`` its value, value with interval
    (``<name>_ours``) and verdict (``<name>_verdict``)."""
    rows = {}
    for name, t in tables.items():
        for r in t.itertuples():
            row = rows.setdefault(r.claim, {"claim": r.claim, "paper": r.paper, "where": r.where, "test": r.test})
            row[name] = r.value
            row[f"{name}_ours"] = r.ours
            row[f"{name}_verdict"] = r.verdict
    return pd.DataFrame(list(rows.values()))


def seed_spread(claims_by_seed: dict) -> pd.DataFrame:
    """One row per claim: its value (and interval) per seed, their mean and standard deviation, and
    how many seeds reproduce it. ``claims_by_seed``: {seed: claims table (claims.judge_claims)}."""
    out = side_by_side({f"seed{s}": t for s, t in sorted(claims_by_seed.items())})
    values = out[[f"seed{s}" for s in sorted(claims_by_seed)]].to_numpy(float)
    with warnings.catch_warnings():  # a claim no seed ran (its task off) has no mean: NaN, said by its verdict
        warnings.simplefilter("ignore", RuntimeWarning)
        out["mean"] = np.nanmean(values, axis=1)
        out["seed_std"] = np.nanstd(values, axis=1, ddof=1) if values.shape[1] > 1 else np.nan
    verdicts = out[[f"seed{s}_verdict" for s in sorted(claims_by_seed)]]
    out["n_seeds"] = values.shape[1]
    out["n_reproduced"] = (verdicts == REPRODUCED).sum(axis=1)
    out["seeds_verdict"] = [seeds_verdict(v) for v in verdicts.to_numpy()]
    return out


def scaling_table(points: dict) -> pd.DataFrame:
    """One row per (variant, quantity): the preset, the budget and the quantity with its interval.
    ``points``: {variant: (summary table, budget dict, preset)}."""
    rows = []
    for variant, (summary, cost, preset_name) in points.items():
        for label, (task, target, metric), of, line in SCALING_QUANTITIES:
            hit = summary[(summary.task == task) & (summary.target == target) & (summary.metric == metric)]
            if hit.empty:
                continue
            r = hit.iloc[0]
            v, lo, hi = (r.model, r.model_lo, r.model_hi) if of == "model" else (r.model_over_xgboost, r.ratio_lo, r.ratio_hi)
            rows.append(
                {"variant": variant, "preset": preset_name, **cost, "quantity": label, "value": v, "lo": lo, "hi": hi, "line": line}
            )
    return pd.DataFrame(rows).sort_values(["quantity", "preset", "star_samples"]).reset_index(drop=True)


def crossings(table: pd.DataFrame) -> pd.DataFrame:
    """Per (quantity, preset): where the curve crosses its line (interpolated in log star-samples), or
    how it ends: 'below the line throughout', 'above the line, still falling' or 'above the line, flat'
    (the last two points within each other's interval); one budget alone is no curve."""
    out = []
    for (q, p), g in table.groupby(["quantity", "preset"]):
        g = g.sort_values("star_samples")
        x, y, line = np.log10(g.star_samples.to_numpy()), g.value.to_numpy(float), float(g.line.iloc[0])
        below = y <= line
        where, verdict = float("nan"), ""
        if below.all():
            verdict = "below the line at every budget"
        elif below.any():
            k = int(np.argmax(below))  # the first point at or below the line
            if k == 0:
                verdict = "below the line at the smallest budget"
            else:
                f = (line - y[k - 1]) / (y[k] - y[k - 1])
                where = float(10 ** (x[k - 1] + f * (x[k] - x[k - 1])))
                verdict = f"crosses the line at ~{where:.3g} star-samples"
        elif len(g) == 1:
            verdict = "above the line at its one budget (no curve)"
        else:
            last, prev = g.iloc[-1], g.iloc[-2]
            flat = last.lo <= prev.value <= last.hi
            verdict = "above the line, flat at the largest budgets" if flat else "above the line, still falling"
        out.append({"quantity": q, "preset": p, "crossing_star_samples": where, "verdict": verdict, "last_value": float(y[-1])})
    return pd.DataFrame(out)


def write_seeds(claims_paths: dict, out_csv) -> pd.DataFrame:
    """``claims_paths``: {seed: its claims.csv}; writes seeds.csv."""
    table = seed_spread({s: pd.read_csv(p) for s, p in claims_paths.items()})
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    return table


def write_experiments(claims_paths: dict, out_csv) -> pd.DataFrame:
    """``claims_paths``: {experiment name (``base`` for the base model): its claims.csv}; writes experiments.csv."""
    table = side_by_side({name: pd.read_csv(p) for name, p in claims_paths.items()})
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    return table


def write_scaling(points: dict, out_csv, crossings_csv) -> pd.DataFrame:
    """``points``: {variant: (summary.csv, model folder, preset)}; writes scaling.csv and the crossings."""
    loaded = {v: (pd.read_csv(s), budget(m), p) for v, (s, m, p) in points.items()}
    table = scaling_table(loaded)
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    with atomic_path(crossings_csv) as tmp:
        crossings(table).to_csv(tmp, index=False, float_format="%.6g")
    return table


def draw_scaling(table: pd.DataFrame, out_png, dpi: int = 110):
    """One panel per quantity: the value with its interval against star-samples seen, one line per
    preset, and the line it is compared with (the expert's 1, the extinction bar)."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    quantities = list(dict.fromkeys(table.quantity))
    n = len(quantities)
    cols = 3
    fig, axes = plt.subplots(math.ceil(n / cols), cols, figsize=(4.2 * cols, 3.4 * math.ceil(n / cols)), squeeze=False)
    for ax, q in zip(axes.flat, quantities):
        g = table[table.quantity == q]
        for p, gp in g.groupby("preset"):
            gp = gp.sort_values("star_samples")
            err = np.array([gp.value - gp.lo, gp.hi - gp.value])
            ax.errorbar(gp.star_samples, gp.value, yerr=np.where(np.isfinite(err), err, 0), marker="o", capsize=3, label=p)
        ax.axhline(float(g.line.iloc[0]), color="k", ls="--", lw=1, label="expert" if "XGBoost" in q else "bar")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # decades only: minor labels overlap
        if g.value.max() > 10 * max(g.value.min(), 1e-12):
            ax.set_yscale("log")  # a small budget's ratio of 10-100 would flatten the rest of the curve
        ax.set_xlabel("star-samples seen in training")
        ax.set_title(q, fontsize=10)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)
