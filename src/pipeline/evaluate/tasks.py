"""Running one evaluation task (registry.TASKS): its function, its test stars, its outputs."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from ..io.atomic import write_json
from ..io.tables import write_tables
from . import mass_age, parameters, spectra, star_search
from .data import load_test_stars
from .registry import MODEL_TASKS, TASKS
from .settings import task_settings

log = logging.getLogger(__name__)

# the function of each task of the shared evaluate rule (registry.MODEL_TASKS)
RUNNERS = {
    "spectra_to_parameters": parameters.spectra_to_parameters,
    "perception": parameters.perception,
    "parameters_to_spectra": spectra.parameters_to_spectra,
    "spectra_to_spectra": spectra.spectra_to_spectra,
    "parameters_to_parameters": parameters.parameters_to_parameters,
    "extinction_curve": spectra.extinction_curve,
    "never_requested": parameters.never_requested,
    "rp0_experts": parameters.rp0_experts,
    "attention": parameters.attention,
    "mass_age": mass_age.mass_age,
    "search": star_search.star_search,
}
assert set(RUNNERS) == set(MODEL_TASKS), "every task of registry.MODEL_TASKS needs its function here"


def run_task(task, model_dir, store_path, catalog_path, truth_path, experts_dir, out_dir, settings: dict):
    """Run one task; writes ``metrics.json`` and ``predictions.parquet`` (the figures' cache) in out_dir."""
    from ..model.api import StellarModel
    from ..search.contrastive import StarSearch

    if task not in RUNNERS:
        raise ValueError(f"unknown evaluation task {task!r}; known: {sorted(RUNNERS)}")
    fn, letter, figs = RUNNERS[task], TASKS[task].letter, TASKS[task].paper_figures
    t0 = time.perf_counter()
    model = StarSearch.load(model_dir) if task == "search" else StellarModel.load(model_dir)  # search: the fine-tuned pair
    stars = load_test_stars(store_path, catalog_path, truth_path)
    cfg = task_settings(task, settings)
    metrics, tables = fn(model, stars, cfg, experts_dir)
    metrics = {
        "task": task,
        "issue_letter": letter,
        "paper_figures": figs,
        "model": str(model_dir),
        "seconds": round(time.perf_counter() - t0, 2),
        **metrics,
    }
    out = Path(out_dir)
    write_tables(out / "predictions.parquet", tables)
    write_json(metrics, out / "metrics.json")
    log.info("task %s (%s): %.1f s", task, letter, metrics["seconds"])
    return metrics
