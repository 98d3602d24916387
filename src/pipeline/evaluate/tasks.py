"""The registry of evaluation tasks (a-i of issue 5 / sections 6-7 of Leung & Bovy) and their runner."""
from __future__ import annotations

import logging
import time
from pathlib import Path

from ..io.atomic import write_json
from . import mass_age, parameters, spectra, star_search
from .data import load_test_stars, write_tables

log = logging.getLogger(__name__)

# name -> (function, letter in the issue, the paper's figures)
TASKS = {
    "spectra_to_parameters": (parameters.spectra_to_parameters, "a", "Fig. 4, B1"),
    "perception": (parameters.perception, "b", "Fig. 5"),
    "parameters_to_spectra": (spectra.parameters_to_spectra, "c", "Figs. 6, 7, B3"),
    "spectra_to_spectra": (spectra.spectra_to_spectra, "d", "Fig. 9"),
    "parameters_to_parameters": (parameters.parameters_to_parameters, "e", "Fig. 10"),
    "extinction_curve": (spectra.extinction_curve, "f", "Fig. 11"),
    "never_requested": (parameters.never_requested, "g", "Fig. 14"),
    "rp0_experts": (parameters.rp0_experts, "h", "Fig. 13"),
    "attention": (parameters.attention, "i", "Fig. 12"),
    "mass_age": (mass_age.mass_age, "7", "Zhang et al. 2026, Fig. 5"),
    "search": (star_search.star_search, "C", "appendix C"),
}
# tasks with their own rule and models (not a StellarModel): SpectraFM (workflow/rules/spectrafm.smk)
OWN_RULE_TASKS = ("spectrafm",)
# the XGBoost experts (results/baselines/<set>) each task compares with
EXPERTS = {"spectra_to_parameters": ("xp30_colours",), "rp0_experts": parameters.RP0_SETS, "mass_age": mass_age.SETS}


def run_task(task, model_dir, store_path, catalog_path, truth_path, experts_dir, out_dir, settings: dict):
    """Run one task; writes ``metrics.json`` and ``predictions.parquet`` (the figures' cache) in out_dir."""
    from ..model.api import StellarModel
    from ..search.contrastive import StarSearch

    if task not in TASKS:
        raise ValueError(f"unknown evaluation task {task!r}; known: {sorted(TASKS)}")
    fn, letter, figs = TASKS[task]
    t0 = time.perf_counter()
    model = StarSearch.load(model_dir) if task == "search" else StellarModel.load(model_dir)  # search: the fine-tuned pair
    stars = load_test_stars(store_path, catalog_path, truth_path)
    cfg = {**{k: v for k, v in settings.items() if k not in TASKS}, **(settings.get(task) or {})}
    metrics, tables = fn(model, stars, cfg, experts_dir)
    metrics = {"task": task, "issue_letter": letter, "paper_figures": figs, "model": str(model_dir),
               "seconds": round(time.perf_counter() - t0, 2), **metrics}
    out = Path(out_dir)
    write_tables(out / "predictions.parquet", tables)
    write_json(metrics, out / "metrics.json")
    log.info("task %s (%s): %.1f s", task, letter, metrics["seconds"])
    return metrics
