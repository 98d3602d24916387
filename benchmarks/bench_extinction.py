"""Benchmark: Monte Carlo ln E(B-V), vectorised Dask chunks against a plain per-star loop.

    .venv/bin/python benchmarks/bench_extinction.py [--stars 2000] [--samples 1000] [--workers 2]

Builds a small mock sky in a temporary folder (or uses --sky), takes the same stars for both
methods, and prints star-samples per second for each and their ratio (measured side by side,
in one run). The per-star loop calls mwdust's own ``Combined19()(l, b, d)`` once per star.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import pandas as pd


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stars", type=int, default=2000)
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--sky", default=None, help="an existing mock sky folder (default: build one)")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="bench-sky-")
    sky = args.sky
    if sky is None:
        from pipeline.sky.build import SkyConfig, build_sky

        sky = os.path.join(tmp, "sky")
        build_sky(SkyConfig(n_stars=int(args.stars * 1.3), nside=32, seed=3), sky)
    os.environ.setdefault("DUST_DIR", os.path.join(sky, "dust"))
    from pipeline.catalog.extinction import load_combined19, log_ebv_dask, log_ebv_per_star_loop

    g = pd.read_parquet(os.path.join(sky, "gaia_source.parquet"))
    g = g[(g.ruwe < 1.4) & (g.parallax_error < 0.1) & g.parallax.notna()].iloc[: args.stars]
    plx, err, l, b = (g[c].to_numpy(float) for c in ("parallax", "parallax_error", "l", "b"))
    dust_dir = os.path.join(sky, "dust")
    load_combined19(dust_dir)  # load the map once, outside both timings
    n = len(g) * args.samples

    t0 = time.perf_counter()
    med_d, mad_d = log_ebv_dask(plx, err, l, b, dust_dir, n_samples=args.samples, chunk_stars=250, seed=0, n_workers=args.workers)
    t_dask = time.perf_counter() - t0
    t0 = time.perf_counter()
    med_l, mad_l = log_ebv_per_star_loop(plx, err, l, b, dust_dir, n_samples=args.samples, seed=0)
    t_loop = time.perf_counter() - t0

    print(f"stars: {len(g)}, samples per star: {args.samples}, Dask workers: {args.workers}")
    print(f"per-star loop (mwdust Combined19 call per star): {n / t_loop:12.4g} star-samples/s  ({t_loop:.2f} s)")
    print(f"vectorised Dask chunks:                          {n / t_dask:12.4g} star-samples/s  ({t_dask:.2f} s)")
    print(f"speed-up: {t_loop / t_dask:.1f}x (target >= 20x)")
    # same estimator, different random draws: agree to Monte Carlo precision
    ok = np.isfinite(med_d) & np.isfinite(med_l)
    print(
        f"median |difference| of logebv between methods: {np.median(np.abs(med_d[ok] - med_l[ok])):.2e} "
        f"(Monte Carlo noise ~ {np.median(mad_d[ok]) / np.sqrt(args.samples):.1e})"
    )


if __name__ == "__main__":
    main()
