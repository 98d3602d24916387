"""The model's resolution against what its inputs allow (issue 45), on a finished run's outputs:

- the identity: Teff, logg and [M/H] given among the inputs and asked back (task a's "labels given"
  row of summary.csv), each robust scatter over the label's spread (robust std) on the test stars;
- rp0 from Teff, logg, [M/H], J-H, J-K and BP-RP (task h's sharpest relation): the model's robust
  scatter against the tuned XGBoost expert's on the same test stars, the data's noise floor, and a
  plain MLP yardstick trained here on the same inputs (train split, early stopping on validation
  stars, scored on the test stars), each with its 95% bootstrap interval.

    .venv/bin/python benchmarks/bench_resolution.py --results results [--epochs 200]
    .venv/bin/python benchmarks/bench_resolution.py --results results --compare results/models/a results/models/b  # on validation stars
    .venv/bin/python benchmarks/bench_resolution.py --results results --candidates benchmarks/resolution_candidates.yaml
    .venv/bin/python benchmarks/bench_resolution.py --identity-by-teff results/eval/spectra_to_parameters/predictions.parquet

The first trains only the MLP (about a minute on 2 cores); the model and expert are the run's. Ends
with one line of ratios: identity / spread per label, rp0 model / expert and MLP / expert.
``--candidates`` trains each candidate recipe of the file (``--only``: those named; the run's ``train`` block, the file's
``base`` and the candidate's overrides) on the run's token store into ``<results>/resolution/<name>``
(about 8 min each on one core; a folder with a model.pt is measured as it is), then measures them
all beside the run's model and its seed retrainings on the validation stars (``--compare``'s table,
with task f's extinction curve on validation giants: the cost a recipe may have elsewhere),
and writes it to ``<results>/resolution/candidates.csv``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from pipeline.evaluate.intervals import PerStar, bootstrap_interval
from pipeline.stats import robust_scatter
from pipeline.tokens.store import split_table

LABELS = {"teff": "K", "logg": "dex", "m_h": "dex"}
RP0_INPUTS = ("teff", "logg", "m_h", "jh", "jk", "bprp")  # the params_2mass_bprp expert's


def summary_rows(results: Path) -> pd.DataFrame:
    s = pd.read_csv(results / "eval/summary.csv")
    return s.set_index(["task", "target", "metric"])


def label_spreads(store: Path) -> dict[str, float]:
    """Each label's robust standard deviation over the test stars that have it."""
    test = split_table(store, "test", list(LABELS))
    return {t: float(robust_scatter(test[t].dropna().to_numpy())) for t in LABELS}


def train_mlp(store: Path, epochs: int, seed: int = 0):
    """A plain MLP (3 x 128 GELU) from RP0_INPUTS to rp0 on the stars with every input: AdamW, early
    stopping on the validation split's loss. Returns (test predictions, test truth)."""
    torch.manual_seed(seed)
    cols = (*RP0_INPUTS, "rp0")
    parts = {s: split_table(store, s, cols).dropna(subset=list(cols)) for s in ("train", "val", "test")}
    x_med = parts["train"][list(RP0_INPUTS)].median()
    x_std = parts["train"][list(RP0_INPUTS)].std()
    y_med, y_std = parts["train"].rp0.median(), parts["train"].rp0.std()

    def xy(d):
        x = torch.tensor(((d[list(RP0_INPUTS)] - x_med) / x_std).to_numpy(np.float32))
        return x, torch.tensor(((d.rp0 - y_med) / y_std).to_numpy(np.float32))

    (xt, yt), (xv, yv), (xs, ys) = (xy(parts[s]) for s in ("train", "val", "test"))
    net = torch.nn.Sequential(
        torch.nn.Linear(len(RP0_INPUTS), 128), torch.nn.GELU(), torch.nn.Linear(128, 128), torch.nn.GELU(),
        torch.nn.Linear(128, 128), torch.nn.GELU(), torch.nn.Linear(128, 1),
    )  # fmt: skip
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-5)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=8)
    best, best_state, since, ran = np.inf, None, 0, 0
    for _ in range(epochs):
        ran += 1
        net.train()
        for idx in torch.randperm(len(xt)).split(256):
            opt.zero_grad()
            torch.nn.functional.mse_loss(net(xt[idx]).squeeze(-1), yt[idx]).backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            val = float(torch.nn.functional.mse_loss(net(xv).squeeze(-1), yv))
        sched.step(val)
        if val < best:
            best, best_state, since = val, {k: v.clone() for k, v in net.state_dict().items()}, 0
        elif (since := since + 1) >= 25:
            break
    net.load_state_dict(best_state)
    with torch.no_grad():
        pred = net(xs).squeeze(-1).numpy() * y_std + y_med
    return pred, parts["test"].rp0.to_numpy(), ran


def measure(model_dir: Path, store: Path, split: str = "val") -> dict:
    """A model's resolution measures on one split (the validation stars, for choosing between
    candidates): each label's identity scatter over its spread (bp/rp 25-54 and the three labels given,
    the labels asked back, as task a's panel); task a's main panel (the labels from xp30+colours, robust
    scatter about the store's labels); rp0's robust scatter from each of the rp0 experts' input sets."""
    from pipeline.baselines.xgb import INPUT_SETS
    from pipeline.model.api import StellarModel

    model = StellarModel.load(model_dir, device="cpu")
    high = list(INPUT_SETS["xp_high"])
    xp30 = list(INPUT_SETS["xp30_colours"])
    d = split_table(store, split, sorted({*high, *xp30, *LABELS, *RP0_INPUTS, "rp0"}))
    spreads = {t: float(robust_scatter(d[t].dropna().to_numpy())) for t in LABELS}
    ident = d[d[high].notna().any(axis=1) & d[list(LABELS)].notna().all(axis=1)]
    pred = model.predict(ident[high + list(LABELS)], list(LABELS), batch_size=4096)
    out = {f"identity_{t}": float(robust_scatter(pred[t].to_numpy() - ident[t].to_numpy())) / spreads[t] for t in LABELS}
    out["identity_teff_k"] = float(robust_scatter(pred["teff"].to_numpy() - ident["teff"].to_numpy()))
    a = d[d[xp30].notna().any(axis=1)]
    pred = model.predict(a[xp30], list(LABELS), batch_size=4096)
    for t in LABELS:
        out[f"task_a_{t}"] = float(robust_scatter((pred[t] - a[t]).dropna().to_numpy()))
    for name in ("params", "params_2mass", "params_2mass_bprp"):
        cols = list(INPUT_SETS[name])
        rp = d.dropna(subset=[*RP0_INPUTS, "rp0"])  # the same stars for the three input sets
        pred = model.predict(rp[cols], ["rp0"], batch_size=4096)
        out[f"rp0_{name}"] = float(robust_scatter(pred["rp0"].to_numpy() - rp.rp0.to_numpy()))
    out["rp0_scatter"] = out["rp0_params_2mass_bprp"]
    out["extinction_curve_rms"] = split_extinction_curve(model, store, split)
    out["n_identity"], out["n_rp0"] = len(ident), len(rp)
    return out


TEFF_EDGES_K = (4400.0, 4800.0, 5200.0, 5900.0)  # the giants' bulk, the dwarfs, the hot tail (few stars)


def identity_by_teff(predictions: pd.DataFrame, edges=TEFF_EDGES_K) -> pd.DataFrame:
    """Where the identity of Teff is lost: task a's "labels given" answers (``predictions.parquet`` of
    spectra_to_parameters, panel model_xp_high_labels) in ranges of the given Teff, each with its
    number of stars, the answer's median offset from the input (a bias, K), its robust scatter about
    that offset (K) and the model's median predicted sigma (K). A scatter over all stars that is mostly
    offsets changing with Teff, or the few hot stars, is a mapping not yet learnt, not noise."""
    g = predictions[predictions.panel == "model_xp_high_labels"]
    if g.empty:
        raise ValueError("no 'model_xp_high_labels' rows: not task a's predictions.parquet (spectra_to_parameters)")
    given, offset = g.label_teff.to_numpy(float), (g.teff - g.label_teff).to_numpy(float)
    bounds = (-np.inf, *edges, np.inf)
    rows = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        m = (given >= lo) & (given < hi)
        rows.append(
            {
                "teff_from_k": lo,
                "teff_to_k": hi,
                "n": int(m.sum()),
                "bias_k": float(np.median(offset[m])) if m.any() else np.nan,
                "scatter_k": float(robust_scatter(offset[m])) if m.sum() > 1 else np.nan,
                "median_sigma_k": float(np.median(g.teff_err.to_numpy(float)[m])) if m.any() else np.nan,
            }
        )
    return pd.DataFrame(rows)


def print_identity_by_teff(predictions_path: Path) -> str:
    """Print the identity of Teff by Teff range; return its part of the line of ratios: the scatter over
    all stars and the hottest range's, each over the scatter within the range with the most stars."""
    predictions = pd.read_parquet(predictions_path)
    table = identity_by_teff(predictions)
    g = predictions[predictions.panel == "model_xp_high_labels"]
    overall = float(robust_scatter((g.teff - g.label_teff).to_numpy(float)))
    print(f"the identity of Teff by the given Teff ({predictions_path}): {overall:.1f} K over all {len(g)} stars")
    for r in table.itertuples():
        span = f"{'' if np.isinf(r.teff_from_k) else f'{r.teff_from_k:.0f}'}-{'' if np.isinf(r.teff_to_k) else f'{r.teff_to_k:.0f}'} K"
        print(
            f"  {span:>12s} {r.n:5d} stars  offset {r.bias_k:7.1f} K  scatter {r.scatter_k:6.1f} K  median sigma {r.median_sigma_k:7.1f} K"
        )
    bulk, hot = table.loc[table.n.idxmax()], table.iloc[-1]  # the range with most stars; the hottest
    return f"all / bulk {overall / bulk.scatter_k:.2f}, hottest / bulk {hot.scatter_k / bulk.scatter_k:.2f} ({overall:.1f} K, {bulk.scatter_k:.1f} K)"


def split_extinction_curve(model, store: Path, split: str, most: int = 300) -> float:
    """Task f's recipe (eq. 15, the evaluation's settings) on giants of ``split`` instead of eq. 13's
    grid: up to ``most`` of its giants in task f's logg range, each asked for its spectrum at its own
    Teff, logg and [M/H] and at the task's E(B-V)s; the RMS of the median curve against the injected
    one. The test split's task f never enters a choice: this is its measure on validation stars."""
    from pipeline.evaluate import spectra
    from pipeline.evaluate.settings import task_settings

    cfg = task_settings("extinction_curve", {})
    cols = ["teff", "logg", "m_h", "logebv"]
    train = split_table(store, "train", cols).dropna(subset=cols)
    e_ref = spectra.reference_ebv_c19(train, cfg)
    d = split_table(store, split, cols).dropna(subset=cols)
    g = d[(d.logg >= cfg.logg_min) & (d.logg <= cfg.logg_max)]
    g = g.sample(most, random_state=0) if len(g) > most else g
    asked = np.concatenate([[e_ref], np.asarray(cfg.ebv_c19, float)])
    grid, flux, _ = spectra.spectra_at_reddenings(model, g.teff.to_numpy(), g.logg.to_numpy(), g.m_h.to_numpy(), asked)
    curves = spectra.curves_against_references(flux, asked)[:, 0]
    return spectra.extinction_curve_rms(grid, curves, *cfg.wavelength_nm)


COLUMNS = {  # measure's key -> the printed column (rp0 in units of 1e-4)
    "identity_teff_k": "ident Teff K",
    "identity_logg": "ident logg/spr",
    "identity_m_h": "ident [M/H]/spr",
    "task_a_teff": "a Teff K",
    "task_a_logg": "a logg",
    "task_a_m_h": "a [M/H]",
    "rp0_params": "rp0 p",
    "rp0_params_2mass": "rp0 p+2M",
    "rp0_params_2mass_bprp": "rp0 p+2M+BPRP",
    "extinction_curve_rms": "ext. curve",
}


def compare(model_dirs: list[Path], store: Path, split: str) -> pd.DataFrame:
    """The measures of several models side by side on ``split`` (default the validation stars):
    the identity (Teff in K, logg and [M/H] over their spreads), task a's main panel (xp30+colours),
    rp0 from each rp0 expert's input set (x 1e-4) and task f's extinction curve on the split's giants
    (RMS against the injected curve). Returns the full table."""
    rows = {Path(m).name: measure(Path(m), store, split) for m in model_dirs}
    table = pd.DataFrame(rows).T
    shown = table[list(COLUMNS)].rename(columns=COLUMNS)
    for c in ("rp0 p", "rp0 p+2M", "rp0 p+2M+BPRP"):
        shown[c] = shown[c] * 1e4
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(f"{split} stars: {int(table.n_identity.iloc[0])} with labels and bp/rp 25-54, {int(table.n_rp0.iloc[0])} with rp0's inputs")
        print(shown.to_string(float_format=lambda v: f"{v:.3g}"))
    first = table.iloc[0]
    print(
        f"ratios (each over {table.index[0]}, {split}): "
        + "; ".join(
            f"{name} identity teff {r.identity_teff / first.identity_teff:.2f} a-teff {r.task_a_teff / first.task_a_teff:.2f} "
            f"rp0 {r.rp0_scatter / first.rp0_scatter:.2f} ext {r.extinction_curve_rms / first.extinction_curve_rms:.2f}"
            for name, r in table.iloc[1:].iterrows()
        )
    )
    return table


def train_candidates(path: Path, results: Path, threads: int, only: list[str] | None = None) -> list[Path]:
    """Train each candidate of ``path`` (``only``: those named) not trained yet; returns the model
    folders in the file's order."""
    import yaml

    from pipeline.model.train import configs_of, train
    from pipeline.tokens.store import open_token_store

    spec = yaml.safe_load(path.read_text())
    unknown = sorted(set(only or ()) - set(spec["candidates"]))
    if unknown:
        raise SystemExit(f"bench_resolution: {path} has no candidate {', '.join(unknown)} (--only)")
    store = results / "tokens/stars.zarr"
    chosen = {name: c for name, c in spec["candidates"].items() if not only or name in only}
    folders = [results / "resolution" / name for name in chosen]
    if any(not (out / "model.pt").is_file() for out in folders):  # read once, and only when one is to train
        run_train = yaml.safe_load(Path("config.yaml").read_text())["train"]  # the run's recipe (the defaults: TrainConfig)
        n_tokens = len(open_token_store(store).attrs["vocabulary"])
    for (name, c), out in zip(chosen.items(), folders):
        if (out / "model.pt").is_file():
            print(f"{name}: trained ({out})", flush=True)
            continue
        block = {**run_train, **(spec.get("base") or {}), **(c.get("train") or {})}
        block["model"] = {**(block.get("model") or {}), **(c.get("model") or {})}
        print(f"{name}: training ({c.get('why', '')})", flush=True)
        train(store, out, *configs_of(block, n_tokens, threads=threads), resume=True)
    return folders


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", type=Path, default=Path("results"))
    p.add_argument("--epochs", type=int, default=200, help="the MLP's most epochs (early stopping ends it sooner)")
    p.add_argument("--compare", nargs="+", type=Path, default=None, help="model folders to measure side by side on --split instead")
    p.add_argument("--split", default="val", choices=("val", "test"), help="with --compare: the stars (validation: for choosing)")
    p.add_argument("--candidates", type=Path, default=None, help="a YAML file of candidate recipes to train and compare")
    p.add_argument("--threads", type=int, default=1, help="with --candidates: torch threads of each training")
    p.add_argument("--only", nargs="+", default=None, metavar="NAME", help="with --candidates: train and compare only these candidates")
    p.add_argument(
        "--identity-by-teff",
        nargs="+",
        type=Path,
        default=None,
        metavar="PREDICTIONS",
        help="task a's predictions.parquet files (a run's eval/spectra_to_parameters/, a variant's): the identity of Teff by Teff range",
    )
    args = p.parse_args(argv)
    if args.identity_by_teff:
        lines = [print_identity_by_teff(path) for path in args.identity_by_teff]
        print("ratios: identity of Teff, each file in turn: " + "; ".join(lines))
        return 0
    results, store = args.results, args.results / "tokens/stars.zarr"
    if args.candidates:
        import yaml

        reference = [results / "models" / m for m in yaml.safe_load(args.candidates.read_text()).get("reference", [])]
        folders = train_candidates(args.candidates, results, args.threads, args.only)
        table = compare([m for m in reference if (m / "model.pt").is_file()] + folders, store, "val")
        table.to_csv(results / "resolution/candidates.csv")
        return 0
    if args.compare:
        compare(args.compare, store, args.split)
        return 0
    if not (results / "eval/summary.csv").is_file():
        print(f"bench_resolution: {results}/eval/summary.csv is missing: run the workflow first", file=sys.stderr)
        return 2
    s = summary_rows(results)
    spreads = label_spreads(store)
    ratios = {}
    print("identity (the label given among the inputs and asked back), robust scatter over the label's spread, test stars:")
    for t, unit in LABELS.items():
        r = s.loc[("spectra_to_parameters", t, "robust_scatter vs input (labels given)")]
        ratios[t] = float(r.model) / spreads[t]
        print(f"  {t:5s} {r.model:9.4g} [{r.model_lo:.4g}, {r.model_hi:.4g}] {unit} / {spreads[t]:.4g} = {ratios[t]:.4f}  (goal <= 0.02)")
    task_a = results / "eval/spectra_to_parameters/predictions.parquet"
    if task_a.is_file():
        print_identity_by_teff(task_a)
    h = s.loc[("rp0_experts", "rp0", "robust_scatter params_2mass_bprp")]
    t0 = time.perf_counter()
    pred, truth, epochs = train_mlp(store, args.epochs)
    mlp = PerStar(pred - truth)
    mlp_value, (mlp_lo, mlp_hi) = float(robust_scatter(pred - truth)), bootstrap_interval(mlp)
    print("rp0 from Teff, logg, [M/H], J-H, J-K and BP-RP, robust scatter on the test stars with every input:")
    print(f"  model          {h.model:.3g} [{h.model_lo:.3g}, {h.model_hi:.3g}]")
    print(f"  XGBoost expert {h.xgboost:.3g} (tuned on validation stars; results/baselines/params_2mass_bprp)")
    print(f"  MLP yardstick  {mlp_value:.3g} [{mlp_lo:.3g}, {mlp_hi:.3g}] ({epochs} epochs, {time.perf_counter() - t0:.0f} s)")
    print(f"  noise floor    {h.noise_floor:.3g}")
    model_over, mlp_over = float(h.model) / float(h.xgboost), mlp_value / float(h.xgboost)
    config = results / "models/small/config.json"
    meta = json.loads(config.read_text()) if config.is_file() else {}
    net, train = meta.get("model") or {}, meta.get("train") or {}
    print(
        f"(the run's model: embedding {net.get('embed_dim', '?')}, {train.get('epochs_per_cycle', '?')} epochs x {train.get('cycles', '?')} cycles)"
    )
    print(
        "ratios: identity/spread teff {:.3f} logg {:.3f} m_h {:.3f}; rp0 model/expert {:.2f} (ratio interval "
        "[{:.2f}, {:.2f}]), MLP/expert {:.2f}, expert/noise floor {:.2f}".format(
            ratios["teff"],
            ratios["logg"],
            ratios["m_h"],
            model_over,
            h.ratio_lo,
            h.ratio_hi,
            mlp_over,
            float(h.xgboost) / float(h.noise_floor),
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
