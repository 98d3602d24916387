"""Benchmark: the Cannon's label inference (SpectraFM's Table 1 expert, evaluate_spectrafm's main cost),
every star at once (``Cannon.infer``: batched Levenberg-Marquardt with the exact Jacobian) against the
star-by-star fit it replaced (scipy's least_squares with a numerical Jacobian, from the same two starts),
side by side on the default run's spectra store: the Cannon of Table 1 fit to the training giants'
observed spectra, read on ``--stars`` test giants. Prints both times, the largest label difference and
each label's RMS about the store's labels by both, and ends with one line of ratios.

    .venv/bin/python benchmarks/bench_cannon.py --results results --stars 150
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from pipeline.baselines.cannon import Cannon, design_matrix, fit_cannon
from pipeline.configuration import with_library_defaults
from pipeline.evaluate.settings import task_settings
from pipeline.evaluate.spectrafm import _table1_selection, cannon_training_giants
from pipeline.spectrafm.store import SpectraStore


def infer_star_by_star(c: Cannon, flux, err) -> np.ndarray:
    """The implementation before: one scipy fit per star and start."""
    from scipy.optimize import least_squares

    start = np.clip(np.where(np.isfinite(flux), flux - c.flux_mean, 0.0) @ c.ridge + c.z_mean, -4, 4)
    out = np.full((len(flux), c.mean.size), np.nan)
    for i in range(len(flux)):
        ok = np.isfinite(flux[i]) & np.isfinite(err[i])
        w = 1.0 / np.sqrt(err[i, ok] ** 2 + c.scatter[ok] ** 2)
        theta = c.theta[:, ok]

        def residual(z, f=flux[i, ok], w=w, theta=theta):
            return (design_matrix(z, c.terms) @ theta - f)[0] * w

        nearest = c.grid_z[np.argmin((((c.grid_flux[:, ok] - flux[i, ok]) * w) ** 2).sum(axis=1))]
        out[i] = min((least_squares(residual, z0) for z0 in (nearest, start[i])), key=lambda f: f.cost).x
    return out * c.std + c.mean


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", type=Path, default=Path("results"))
    p.add_argument("--stars", type=int, default=150, help="test giants to read (the run reads all of them, twice)")
    args = p.parse_args(argv)
    path = args.results / "spectrafm/spectra.zarr"
    if not path.exists():
        print(f"bench_cannon: {path} is missing: run the workflow first", file=sys.stderr)
        return 2
    settings = with_library_defaults(yaml.safe_load(Path("config.yaml").read_text()))["evaluate"].get("spectrafm")
    cfg = task_settings("spectrafm", {"spectrafm": settings})
    store = SpectraStore(path)
    labels, train, y = cannon_training_giants(store, cfg)
    rows = np.flatnonzero((store.stars["split"] == "test").to_numpy())
    rows = rows[_table1_selection(store, rows, cfg)][: args.stars]
    cols = np.arange(store.wavelength_aa.size)
    flux, err = store.read("observed", rows, cols), store.read("observed_err", rows, cols)
    t = time.perf_counter()
    cannon = fit_cannon(y, store.read("observed", train, cols), order=cfg.cannon_order)
    print(
        f"the Cannon of order {cfg.cannon_order}: {len(cannon.terms)} terms x {len(cols)} pixels, {len(train)} training giants, fit in {time.perf_counter() - t:.1f} s"
    )
    t = time.perf_counter()
    batched = cannon.infer(flux, err)
    t_batched = time.perf_counter() - t
    t = time.perf_counter()
    each = infer_star_by_star(cannon, flux, err)
    t_each = time.perf_counter() - t
    ref = store.stars[labels].to_numpy(float)[rows]
    print(f"{len(rows)} test giants: batched {t_batched:.1f} s, star by star {t_each:.1f} s")
    for j, label in enumerate(labels):
        rms = [float(np.sqrt(np.nanmean((a[:, j] - ref[:, j]) ** 2))) for a in (batched, each)]
        diff = float(np.nanmax(np.abs(batched[:, j] - each[:, j])))
        print(f"  {label:6s} RMS about the labels: batched {rms[0]:.4g}, star by star {rms[1]:.4g}; largest difference {diff:.3g}")
    print(f"ratios: star by star / batched time {t_each / t_batched:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
