"""XGBoost experts, trained on train-split stars with labels, tuned on the validation split,
tested on the test split.

Each expert is trained as the papers' "expertly trained" XGBoost: for every point of a small grid
of tree depths and learning rates it grows trees until the validation stars' RMSE has not improved
for ``early_stopping_rounds`` rounds (keeping the best round), and the grid point with the lowest
robust scatter on the validation stars is the expert. The test stars are read only to score the
chosen expert; every choice is recorded in the expert's ``metrics.json`` (``tuning``).

Inputs may be missing: Gaia marks XP coefficients beyond a star's relevant-bases count as not
relevant and the catalog sets them to NaN (as the paper does), so almost no star has all of
bp/rp 0-29. XGBoost learns a default direction for missing values at every split, which is how
an expert uses such data; ``complete_inputs: true`` restricts training and testing to stars with
every input present instead; ``auto`` (the default) does that for input sets without XP
coefficients (the Fig. 13 parameter sets) and allows missing inputs for XP sets.

Input sets are named after the tasks of Leung & Bovy that compare the Transformer to an expert:
``xp30_colours`` (Fig. 4), ``xp5_colours``, ``xp_high`` (bp/rp 25-54), ``xp32`` (Fig. 14: bp/rp
0-31, the never-requested colours' inputs), and the Fig. 13 sets
that predict rp0 from parameters (``params``, ``params_2mass``, ``params_2mass_bprp``), and
``xp29_colours_params`` for the mass and age of giants (Zhang et al. 2026).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..stats import median_mad_std
from ..tokens.store import split_table

log = logging.getLogger(__name__)

COLOURS = ("jh", "jk", "bprp")
INPUT_SETS = {
    "xp30_colours": tuple([f"bp{k}" for k in range(30)] + [f"rp{k}" for k in range(30)]) + COLOURS,
    "xp5_colours": tuple([f"bp{k}" for k in range(5)] + [f"rp{k}" for k in range(5)]) + COLOURS,
    "xp_high": tuple([f"bp{k}" for k in range(25, 55)] + [f"rp{k}" for k in range(25, 55)]),
    # mass and age (Zhang et al. 2026): XP + colours + parameters, 64 tokens (the model's context)
    "xp29_colours_params": tuple([f"bp{k}" for k in range(29)] + [f"rp{k}" for k in range(29)]) + COLOURS + ("teff", "logg", "m_h"),
    # every XP source (apply stage): XP, BP-RP and what the parallax and the dust map give, no 2MASS; 63 tokens
    "xp30_gaia": tuple([f"bp{k}" for k in range(30)] + [f"rp{k}" for k in range(30)]) + ("bprp", "g_fakemag", "logebv"),
    # Fig. 14's yardstick: BP-RP and J-K from the XP coefficients alone, the inputs of the never-requested task
    "xp32": tuple([f"bp{k}" for k in range(32)] + [f"rp{k}" for k in range(32)]),
    # Fig. 9's yardsticks: one band's 55 coefficients from the other's (targets "bp" / "rp": all 55)
    "rp55": tuple(f"rp{k}" for k in range(55)),
    "bp55": tuple(f"bp{k}" for k in range(55)),
    "params": ("teff", "logg", "m_h"),
    "params_2mass": ("teff", "logg", "m_h", "jh", "jk"),
    "params_2mass_bprp": ("teff", "logg", "m_h", "jh", "jk", "bprp"),
}


BANDS = {"bp": tuple(f"bp{k}" for k in range(55)), "rp": tuple(f"rp{k}" for k in range(55))}


def resolve_targets(targets) -> list[str]:
    """An expert set's targets: token names, where ``bp`` / ``rp`` stand for the band's 55 coefficients."""
    return [t for name in targets for t in BANDS.get(name, (name,))]


def expert_plan(experts: dict, xgboost: dict) -> dict[str, tuple[list, dict]]:
    """``baselines.experts`` -> {input set: (targets, its XGBoost settings)}: an entry is a list of
    targets, or ``{targets: [...], xgboost: {...}}`` whose settings override ``baselines.xgboost``
    for that set (e.g. ``grid_on: first`` for the 55 coefficient experts of Fig. 9)."""
    out = {}
    for name, entry in experts.items():
        targets, own = (entry, {}) if isinstance(entry, list) else (entry["targets"], entry.get("xgboost") or {})
        out[name] = (resolve_targets(targets), {**xgboost, **own})
    return out


def resolve_inputs(inputs) -> tuple[str, ...]:
    """A named input set, or an explicit list of token names."""
    if isinstance(inputs, str):
        if inputs not in INPUT_SETS:
            raise ValueError(f"unknown input set {inputs!r}; known: {sorted(INPUT_SETS)} (or give a list of tokens)")
        return INPUT_SETS[inputs]
    return tuple(inputs)


@dataclass
class ExpertConfig:
    """The XGBoost experts' settings (``baselines.xgboost``), the same for every input set and target.
    ``max_depth`` and ``learning_rate`` are the grid searched on validation stars (a number: no search)."""

    n_estimators: int = 3000  # the most boosting rounds; early stopping on validation stars picks the number
    early_stopping_rounds: int = 50  # stop when the validation RMSE has not improved for this many rounds
    max_depth: list | int = field(default_factory=lambda: [4, 6, 8])  # depth of each tree: the grid
    learning_rate: list | float = field(default_factory=lambda: [0.05, 0.15])  # shrinkage of each tree: the grid
    subsample: float = 0.8  # share of the training stars each tree sees
    grid_on: str = "each"  # each: every target searches the grid; first: the set's first target does and the others take
    # its point (their trees still by early stopping): for sets of many similar targets (Fig. 9's 55 coefficients)
    seed: int = 0  # XGBoost's random seed
    device: str = "auto"  # auto: cuda when a GPU is visible, else cpu
    complete_inputs: bool | str = "auto"  # True: only stars with every input; False: at least one (NaN allowed);
    # auto: XP input sets take stars with missing coefficients (beyond Gaia's relevant bases they are NaN,
    # which XGBoost handles), other sets only stars with every input


def requires_complete_inputs(feats, setting) -> bool:
    """Whether an expert needs every input: the setting itself, or with ``auto`` unless an input is an XP coefficient."""
    if isinstance(setting, bool):
        return setting
    if setting != "auto":
        raise ValueError(f"baselines.xgboost.complete_inputs must be true, false or auto, not {setting!r}")
    return not any(f[:2] in ("bp", "rp") and f[2:].isdigit() for f in feats)


def _device(name):
    from ..engine import device_and_precision

    return device_and_precision(name)[0].type


MIN_STARS = 10  # an expert needs this many train stars; early stopping this many validation stars
FALLBACK_TREES = 100  # trees of an expert with too few validation stars to stop on (the grid's first point)


class TooFewStars(ValueError):
    """An expert's target has too few train stars with its inputs and a label."""


def grid_points(cfg: ExpertConfig) -> list[tuple[int, float]]:
    """The (max_depth, learning_rate) pairs searched on validation stars."""
    depths = cfg.max_depth if isinstance(cfg.max_depth, (list, tuple)) else [cfg.max_depth]
    rates = cfg.learning_rate if isinstance(cfg.learning_rate, (list, tuple)) else [cfg.learning_rate]
    if not depths or not rates:
        raise ValueError("baselines.xgboost: max_depth and learning_rate need at least one value each")
    return [(int(d), float(r)) for d in depths for r in rates]


def fit_tuned(x_train, y_train, x_val, y_val, cfg: ExpertConfig, n_jobs: int = 1, point: tuple | None = None):
    """The expert chosen on validation stars: at each grid point, trees grown until the validation
    RMSE stops improving (the best round kept); the point with the lowest validation robust
    scatter wins, the first in grid order on a tie (``point``: only that (depth, rate)). The grid's
    points are fitted side by side on ``n_jobs`` threads (each fit one thread: XGBoost's own
    threads leave a core idle in the per-round work of these small trees); the result is the same
    as fitting them one after another. Returns (model, tuning record)."""
    import xgboost as xgb

    def regressor(depth, rate, threads, **kw):
        return xgb.XGBRegressor(
            max_depth=depth,
            learning_rate=rate,
            subsample=cfg.subsample,
            tree_method="hist",
            device=_device(cfg.device),
            n_jobs=threads,
            random_state=cfg.seed,
            **kw,
        )

    if len(y_val) < MIN_STARS:  # nothing to stop on or choose by (a rare XP coefficient on a small sky)
        depth, rate = point or grid_points(cfg)[0]
        model = regressor(depth, rate, n_jobs, n_estimators=min(cfg.n_estimators, FALLBACK_TREES))
        model.fit(x_train, y_train)
        chosen = {"max_depth": depth, "learning_rate": rate, "n_trees": model.n_estimators, "val_robust_scatter": float("nan")}
        why = f"only {len(y_val)} validation stars: the grid's first point, {model.n_estimators} trees, no early stopping"
        log.warning("expert: %s", why)
        return model, {"chosen": chosen, "grid": [], "chosen_on": why}
    points = [point] if point else grid_points(cfg)
    workers = max(1, min(n_jobs, len(points)))

    def fit_point(depth_rate):
        depth, rate = depth_rate
        model = regressor(
            depth,
            rate,
            max(1, n_jobs // workers),
            n_estimators=cfg.n_estimators,
            early_stopping_rounds=cfg.early_stopping_rounds,
            eval_metric="rmse",
        )
        model.fit(x_train, y_train, eval_set=[(x_val, y_val)], verbose=False)
        scatter = median_mad_std(model.predict(x_val) - y_val)[1]
        rec = {"max_depth": depth, "learning_rate": rate, "n_trees": int(model.best_iteration) + 1, "val_robust_scatter": scatter}
        rec["val_rmse"] = float(model.best_score)
        return rec, model

    tried, best, best_model = [], None, None
    for rec, model in in_threads(fit_point, points, workers, cost=lambda dr: dr[0] / dr[1]):  # in grid order
        tried.append(rec)
        if best is None or rec["val_robust_scatter"] < best["val_robust_scatter"]:
            best, best_model = rec, model
    if best["n_trees"] >= cfg.n_estimators:
        log.warning("expert stopped at n_estimators=%d before its validation RMSE stopped improving; raise it", cfg.n_estimators)
    how = (
        "the set's first target's point; trees by early stopping" if point else "validation stars (robust scatter); trees by early stopping"
    )
    return best_model, {"chosen": best, "grid": tried, "chosen_on": how}


def in_threads(fn, items, workers: int, cost=None) -> list:
    """``[fn(item) for item in items]`` on ``workers`` threads (XGBoost releases the GIL while it
    grows trees), returned in the order of ``items``; started dearest first by ``cost(item)`` (a
    guess: the deepest, slowest-learning grid point grows the most and the largest trees), so that
    no thread is left with a long fit at the end; an exception in any call is raised here."""
    if workers <= 1 or len(items) <= 1:
        return [fn(item) for item in items]
    from concurrent.futures import ThreadPoolExecutor

    order = sorted(range(len(items)), key=lambda i: -cost(items[i])) if cost else range(len(items))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {i: pool.submit(fn, items[i]) for i in order}
        return [futures[i].result() for i in range(len(items))]


def train_expert(store_path, inputs, target, cfg: ExpertConfig, n_jobs: int = 1, point: tuple | None = None, tables=None):
    """Fit one expert (tuned on the validation split); returns (booster, metrics, test predictions DataFrame).
    ``tables``: the store's train, val and test splits already read (``split_table``) with the
    expert's inputs and target among their columns (a set's experts read the store once)."""
    feats = resolve_inputs(inputs)
    if target in feats:
        raise ValueError(f"target {target} is also an input of the expert")
    train, val, test = tables or (split_table(store_path, s, (*feats, target)) for s in ("train", "val", "test"))
    complete = requires_complete_inputs(feats, cfg.complete_inputs)
    present = (lambda d: d[list(feats)].notna().all(axis=1)) if complete else (lambda d: d[list(feats)].notna().any(axis=1))
    usable_tr = present(train) & train[target].notna()
    usable_va = present(val) & val[target].notna()
    usable_te = present(test) & test[target].notna()
    if usable_tr.sum() < 10:
        need = "every input" if complete else "any input"
        raise TooFewStars(
            f"expert {inputs}->{target}: only {int(usable_tr.sum())} train stars have {need} and a label; "
            f"set baselines.xgboost.complete_inputs: false or choose other inputs"
        )
    t0 = time.perf_counter()
    xy = [
        (d.loc[u, list(feats)].to_numpy(np.float32), d.loc[u, target].to_numpy(np.float32))
        for d, u in ((train, usable_tr), (val, usable_va))
    ]
    model, tuning = fit_tuned(*xy[0], *xy[1], cfg, n_jobs, point)
    te = test[usable_te]
    pred = model.predict(te[list(feats)].to_numpy(np.float32))
    resid = pred - te[target].to_numpy()
    bias, scatter = median_mad_std(resid)
    p16, p50, p84 = np.percentile(resid, [16, 50, 84]) if resid.size else (np.nan,) * 3
    metrics = {
        "inputs": inputs if isinstance(inputs, str) else list(inputs),
        "target": target,
        "n_train": int(usable_tr.sum()),
        "n_val": int(usable_va.sum()),
        "n_test": int(usable_te.sum()),
        "complete_inputs": complete,
        "tuning": tuning,
        "bias": bias,
        "robust_scatter": scatter,
        "p16": float(p16),
        "p50": float(p50),
        "p84": float(p84),
        "seconds": round(time.perf_counter() - t0, 2),
        "device": _device(cfg.device),
    }
    preds = pd.DataFrame(
        {
            "row": te.row.to_numpy(),
            "source_id": te.source_id.to_numpy(),
            target: pred,
            f"{target}_label": te[target].to_numpy(),
            f"{target}_label_err": te[f"{target}_err"].to_numpy(),
        }
    )
    c = tuning["chosen"]
    log.info(
        "expert %s -> %s: depth %d, rate %g, %d trees (validation scatter %.4g); robust scatter %.4g on %d test stars (%d train, %.1f s)",
        metrics["inputs"],
        target,
        c["max_depth"],
        c["learning_rate"],
        c["n_trees"],
        c["val_robust_scatter"],
        scatter,
        metrics["n_test"],
        metrics["n_train"],
        metrics["seconds"],
    )
    return model, metrics, preds


def run_experts(store_path, out_dir, inputs, targets, cfg: ExpertConfig, n_jobs: int = 1):
    """Train one expert per target for an input set; write model_<target>.json, predictions.parquet, metrics.json.
    Of a set of several targets, one with too few train stars gets no expert (metrics.json says why)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.grid_on not in ("each", "first"):
        raise ValueError(f"baselines.xgboost.grid_on must be each or first, not {cfg.grid_on!r}")
    feats = resolve_inputs(inputs)
    tables = [split_table(store_path, s, list(dict.fromkeys([*feats, *targets]))) for s in ("train", "val", "test")]

    def expert(target, threads, point=None):
        try:
            return train_expert(store_path, inputs, target, cfg, threads, point, tables)
        except TooFewStars as exc:
            if len(targets) == 1:
                raise
            # one of many (a band's rarest coefficients on a small sky): no expert for it, said in metrics.json
            log.warning("%s: no expert for this target", exc)
            return exc

    if cfg.grid_on == "first":  # the first target searches the grid; the others, at its point, side by side
        results = [expert(targets[0], n_jobs)]
        point = None
        if not isinstance(results[0], TooFewStars):
            c = results[0][1]["tuning"]["chosen"]
            point = (c["max_depth"], c["learning_rate"])
        results += in_threads(lambda t: expert(t, 1, point), targets[1:], n_jobs)
    else:  # each target its grid, whose points run side by side
        results = [expert(t, n_jobs) for t in targets]
    all_metrics, all_preds, skipped = {}, None, {}
    for target, result in zip(targets, results):
        if isinstance(result, TooFewStars):
            skipped[target] = {"target": target, "skipped": str(result)}
            continue
        model, metrics, preds = result
        # the trees up to the best validation round only: what predicts, whoever loads the file
        best = getattr(model, "best_iteration", None)
        booster = model.get_booster()
        (booster[: int(best) + 1] if best is not None else booster).save_model(out / f"model_{target}.json")
        all_metrics[target] = metrics
        all_preds = preds if all_preds is None else all_preds.merge(preds.drop(columns="source_id"), on="row", how="outer")
    all_preds.to_parquet(out / "predictions.parquet", index=False)
    (out / "metrics.json").write_text(json.dumps({**all_metrics, **skipped}, indent=2) + "\n")
    return all_metrics


# -- the trained experts, read back (the evaluation's yardsticks) ------------------------------------
def expert_predict(experts_dir, input_set, target, table: pd.DataFrame) -> np.ndarray:
    """Predictions of a trained XGBoost expert (results/baselines/<set>/model_<target>.json); NaN where no input is present."""
    import xgboost as xgb

    path = Path(experts_dir) / input_set / f"model_{target}.json"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no XGBoost expert {input_set} -> {target}; add it to baselines.experts in the config")
    booster = xgb.XGBRegressor()
    booster.load_model(path)
    feats = list(INPUT_SETS[input_set])
    x = table[feats].to_numpy(np.float32)
    out = np.full(len(table), np.nan)
    ok = np.isfinite(x).any(axis=1)  # XGBoost takes missing inputs; a star needs at least one
    if ok.any():
        out[ok] = booster.predict(x[ok])
    return out


def expert_or_nan(experts_dir, input_set, target, table) -> np.ndarray:
    """An expert's predictions where the config trained one (baselines.experts), else NaN (no yardstick)."""
    if experts_dir is None or not (Path(experts_dir) / input_set / f"model_{target}.json").exists():
        log.info("no XGBoost expert %s -> %s: its rows of the summary have no expert", input_set, target)
        return np.full(len(table), np.nan)
    return expert_predict(experts_dir, input_set, target, table)
