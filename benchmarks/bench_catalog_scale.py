"""Benchmark: the pipeline at the paper's scale and beyond, in wall time and peak memory.

1. The catalog and tokens stages on a mock sky of ``--sky-stars`` stars (the paper: 440,000),
   each stage in a fresh process as its rule runs it (1,000 extinction samples per star, the
   default config's cuts), its wall time and peak resident memory.
2. ``predict_catalog`` end to end (read the bulk files, reduce, infer, write) on all-sky mock XP
   populations of ``--sources`` sizes, written as Parquet partitions of ``--partition-sources``
   sources each: every partition in a fresh process, as one Snakemake job, so the sources/s
   include each job's start-up; peak memory per job, which must stay flat as the number of
   partitions grows (bounded by one partition).

    .venv/bin/python benchmarks/bench_catalog_scale.py --model results/models/small --catalog results/catalog/catalog.parquet
    .venv/bin/python benchmarks/bench_catalog_scale.py --sky-stars 0 --sources 10000,100000,2000000 --device cuda

The model and the training catalogue's range come from a finished default run. Ends with one line
of figures: rates, peak memory and its ratio between the largest and smallest population.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"


def _peak_mb():
    """This process's peak resident memory (MB): VmHWM, the high-water mark of its own address space.

    Not getrusage's ru_maxrss: Linux carries it over fork and exec, so a worker would report at
    least its parent's resident size at the fork (the 440k-star sky built in the parent: 10 GB).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _config(args) -> dict:
    """The workflow config's blocks the rules would be given (the catalog's cuts and samples):
    the config completed from the library's defaults, as the Snakefile completes it."""
    import yaml

    from pipeline.configuration import with_library_defaults

    return with_library_defaults(yaml.safe_load(Path(args.config).read_text()))


def worker(args):
    sys.path.insert(0, str(SRC))
    import logging
    import os

    os.environ.setdefault("DUST_DIR", args.dust)
    logging.basicConfig(level=logging.WARNING)
    t0 = time.perf_counter()
    if args.step == "catalog":
        from pipeline.catalog.build import CatalogConfig, build_catalog, write_catalog

        sky = Path(args.sky)
        cfg = CatalogConfig.from_dict(_config(args)["catalog"])
        cat, counts = build_catalog(
            sky / "allStar.fits", sky / "gaia_source.parquet", sky / "xp_continuous", sky / "dust", cfg, n_workers=args.threads
        )
        write_catalog(cat, counts, Path(args.out))
        n = len(cat)
    elif args.step == "tokens":
        import pandas as pd

        from pipeline.tokens.store import build_token_store
        from pipeline.tokens.vocab import vocabulary

        cat = pd.read_parquet(Path(args.out) / "catalog.parquet")
        build_token_store(cat, Path(args.out) / "stars.zarr", vocabulary(), chunk_stars=_config(args)["tokens"]["chunk_stars"])
        n = len(cat)
    else:  # one partition of predict_catalog
        import torch

        from pipeline.apply.catalogue import CatalogAllConfig, predict_partition
        from pipeline.catalog.build import CatalogConfig
        from pipeline.io.atomic import write_parquet

        torch.set_num_threads(args.threads)
        table = predict_partition(
            [args.gaia],
            args.xp,
            args.model,
            args.domain,
            args.dust,
            CatalogAllConfig.from_dict({**_config(args)["catalog_all"], "device": args.device}),
            CatalogConfig.from_dict(_config(args)["catalog"]),
            n_workers=args.threads,
        )
        write_parquet(table, args.out)
        n = len(table)
    print(json.dumps({"n": n, "seconds": time.perf_counter() - t0, "peak_mb": _peak_mb()}))


def run_worker(**kw) -> dict:
    cmd = [sys.executable, __file__, "--worker"] + [f"--{k.replace('_', '-')}={v}" for k, v in kw.items()]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"worker {kw.get('step')} failed:\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["wall"] = time.perf_counter() - t0  # with the process's start-up and imports, as a job has
    return out


def scale_catalog(args, work: Path) -> dict:
    sys.path.insert(0, str(SRC))
    from pipeline.sky.build import SkyConfig, build_sky

    sky = work / f"sky_{args.sky_stars}"
    if not (sky / "manifest.json").exists():
        t0 = time.perf_counter()
        build_sky(SkyConfig(n_stars=args.sky_stars, xp_partitions=16), sky)
        print(f"mock sky of {args.sky_stars} stars built in {time.perf_counter() - t0:.0f} s (not timed below)", flush=True)
    out = work / f"catalog_{args.sky_stars}"
    out.mkdir(exist_ok=True)
    res = {}
    for step in ("catalog", "tokens"):
        r = run_worker(step=step, sky=sky, out=out, dust=sky / "dust", threads=args.threads, config=args.config)
        res[step] = r
        print(f"{step:8s} {args.sky_stars:>9,d} stars: {r['wall']:7.1f} s wall, peak {r['peak_mb']:7.0f} MB ({r['n']:,d} rows)", flush=True)
    return res


def scale_predict(args, work: Path, n_sources: int) -> dict:
    sys.path.insert(0, str(SRC))
    from pipeline.sky.xp_all import XpAllConfig, build_xp_all, file_names, partition_names

    parts = max(1, math.ceil(n_sources / args.partition_sources))
    folder = work / f"xp_all_{n_sources}"
    if not (folder / "manifest.json").exists():
        t0 = time.perf_counter()
        build_xp_all(
            XpAllConfig(n_sources=n_sources, partitions=parts, format="parquet", chunk=50_000),
            Path(args.dust) / "combined19/combine19.h5",
            folder,
        )
        print(
            f"mock XP population of {n_sources:,d} sources in {parts} partitions built in {time.perf_counter() - t0:.0f} s (not timed)",
            flush=True,
        )
    out = work / f"answers_{n_sources}"
    out.mkdir(exist_ok=True)
    runs = []
    for name in partition_names(parts):
        f = file_names(name, "parquet")
        runs.append(
            run_worker(
                step="predict",
                xp=folder / f["xp_continuous"],
                gaia=folder / f["gaia_source"],
                model=args.model,
                domain=work / "domain.json",
                dust=args.dust,
                out=out / f"{name}.parquet",
                threads=args.threads,
                device=args.device,
                config=args.config,
            )
        )
    n = sum(r["n"] for r in runs)
    wall = sum(r["wall"] for r in runs)
    peak = max(r["peak_mb"] for r in runs)
    print(
        f"predict_catalog {n:>9,d} sources in {parts:3d} partitions: {n / wall:7.0f} sources/s end to end "
        f"({wall:7.1f} s of jobs, {sum(r['seconds'] for r in runs) / parts:5.1f} s per job after start-up), peak {peak:6.0f} MB per job",
        flush=True,
    )
    return {"n": n, "partitions": parts, "wall": wall, "rate": n / wall, "peak_mb": peak}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    for hidden in ("step", "sky", "out", "xp", "gaia", "domain"):
        p.add_argument(f"--{hidden}", help=argparse.SUPPRESS)
    p.add_argument("--sky-stars", type=int, default=440_000, help="stars of the mock sky for the catalog and tokens stages (0: skip)")
    p.add_argument("--sources", default="10000,100000", help="sizes of the all-sky XP populations for predict_catalog")
    p.add_argument("--partition-sources", type=int, default=25_000, help="sources per partition (the archive's files hold ~65,000)")
    p.add_argument("--model", default="results/models/small")
    p.add_argument("--catalog", default="results/catalog/catalog.parquet", help="the training catalogue (its range flags OOD sources)")
    p.add_argument("--dust", default="resources/mock_sky/dust", help="DUST_DIR of the mock's map")
    p.add_argument("--config", default=str(HERE.parent / "config.yaml"), help="the catalog, tokens and catalog_all blocks of this config")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="auto")
    p.add_argument("--work", default="/tmp/bench_catalog_scale")
    args = p.parse_args()
    if args.worker:
        return worker(args)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    print(f"{args.threads} threads, device {args.device}, work folder {work}", flush=True)
    figures = []
    if args.sky_stars:
        res = scale_catalog(args, work)
        figures += [
            f"catalog {res['catalog']['wall']:.0f} s / {res['catalog']['peak_mb']:.0f} MB",
            f"tokens {res['tokens']['wall']:.0f} s / {res['tokens']['peak_mb']:.0f} MB at {args.sky_stars:,d} stars",
        ]
    sizes = [int(s) for s in args.sources.split(",") if s]
    if sizes:
        sys.path.insert(0, str(SRC))
        from pipeline.apply.catalogue import write_domain

        write_domain(args.catalog, work / "domain.json")
        runs = [scale_predict(args, work, n) for n in sizes]
        figures += [f"predict {r['n']:,d}: {r['rate']:.0f} sources/s, {r['peak_mb']:.0f} MB" for r in runs]
        if len(runs) > 1:
            figures.append(
                f"peak memory {runs[-1]['peak_mb'] / runs[0]['peak_mb']:.2f}x from {runs[0]['n']:,d} to {runs[-1]['n']:,d} sources"
            )
    print("figures: " + "; ".join(figures))


if __name__ == "__main__":
    main()
