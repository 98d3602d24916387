"""ln E(B-V) and its uncertainty from Monte Carlo sampling of the parallax through the dust map.

Section 4.3 of Leung & Bovy: for each star with a usable parallax, draw N samples of the
zero-point-corrected parallax from its uncertainty; a negative sample means a star beyond the
map, put at 99 kpc; evaluate Combined19 there; E(B-V) > 10 becomes NaN and E(B-V) <= 0 becomes
e^-7; the star's logebv is the median of ln E(B-V) and its error the MAD standard deviation.

The map is mwdust's ``Combined19`` read from ``DUST_DIR``; it is evaluated with the same linear
interpolation in distance modulus that mwdust uses (k = 1), but vectorised over all samples of
a chunk of stars. Chunks run in parallel with Dask; each chunk's random numbers come from
(seed, chunk index), so the result does not depend on the scheduler or the number of workers.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..stats import median_mad_std_along
from .combined19 import ebv_from_rows

log = logging.getLogger(__name__)
FAR_DISTANCE_KPC = 99.0
EBV_MAX = 10.0
LOG_EBV_FLOOR = -7.0

_MAPS: dict[str, object] = {}


def load_combined19(dust_dir):
    """mwdust.Combined19 for the map in ``dust_dir``/combined19/combine19.h5 (no download, ever).

    mwdust reads DUST_DIR when first imported; this sets it, and points an already imported
    mwdust at ``dust_dir`` too, so several maps can be used in one process.
    """
    dust_dir = str(Path(dust_dir).resolve())
    if dust_dir in _MAPS:
        return _MAPS[dust_dir]
    path = Path(dust_dir) / "combined19" / "combine19.h5"
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: Combined19 dust map not found; set catalog.extinction.dust_dir (DUST_DIR) to the folder holding combined19/combine19.h5"
        )
    os.environ.setdefault("DUST_DIR", dust_dir)
    import mwdust  # noqa: F401

    module = sys.modules["mwdust.Combined19"]
    module._combineddir = str(path.parent)
    module.dust_dir = dust_dir
    _MAPS[dust_dir] = module.Combined19()
    return _MAPS[dust_dir]


@dataclass
class DustEvaluator:
    """Vectorised evaluation of a loaded mwdust Combined19 map."""

    dust_dir: str

    @property
    def map(self):
        return load_combined19(self.dust_dir)

    def rows(self, l_deg, b_deg):
        return self.map._lbIndx(np.asarray(l_deg, float), np.asarray(b_deg, float))

    def ebv(self, rows, d_kpc):
        m = self.map
        return ebv_from_rows(m._best_fit, m._distmods, rows, d_kpc)

    def ebv_at_parallax_samples(self, rows, parallax_mas):
        """E(B-V) at distances 1/parallax (99 kpc where parallax <= 0), fused and in float32.

        The same interpolation as ``ebv`` with fewer passes over memory: the distance modulus is
        10 - 5 log10(parallax / mas), computed in place. ``parallax_mas`` is (stars, samples).
        """
        m = self.map
        dmods = np.asarray(m._distmods, float)
        step = dmods[1] - dmods[0]
        p = np.asarray(parallax_mas, np.float32)
        far = p <= 0
        x = np.log10(np.where(far, np.float32(1.0 / FAR_DISTANCE_KPC), p))  # log10(parallax/mas)
        x *= np.float32(-5.0 / step)
        x += np.float32((10.0 - dmods[0]) / step)  # x = (distmod - distmod_0) / step
        j = np.clip(x.astype(np.intp), 0, dmods.size - 2)  # x >= 0 except within 63 pc, where the clip extrapolates
        j[x < 0] = 0
        x -= j
        r = np.asarray(rows)[:, None]
        flat = np.ascontiguousarray(m._best_fit, dtype=np.float64).ravel()
        k = j
        k += np.where(r >= 0, r, 0) * m._best_fit.shape[1]
        lo = flat.take(k).astype(np.float32)
        hi = flat.take(k + 1).astype(np.float32)
        hi -= lo
        hi *= x
        hi += lo
        return np.where(r >= 0, hi, np.float32(np.nan))


def log_ebv_from_samples(ebv):
    """Median and MAD-std of ln E(B-V) over the last axis, with the paper's NaN / floor rules."""
    e = np.where(ebv > EBV_MAX, np.nan, ebv)
    loge = np.where(e <= 0, LOG_EBV_FLOOR, np.log(np.where(e > 0, e, 1.0)))
    loge = np.where(np.isnan(e), np.nan, loge)
    return median_mad_std_along(loge)


def parallax_samples_to_distance_kpc(parallax_samples_mas):
    """1/parallax in kpc; a sample <= 0 means a star beyond the map, placed at 99 kpc."""
    p = np.asarray(parallax_samples_mas, float)
    return np.where(p > 0, 1.0 / np.where(p > 0, p, 1.0), FAR_DISTANCE_KPC)


def sample_log_ebv(parallax_mas, parallax_error_mas, l_deg, b_deg, evaluator: DustEvaluator, n_samples: int, rng):
    """logebv and its error for a chunk of stars, vectorised over stars and samples."""
    plx = np.asarray(parallax_mas, float)
    err = np.asarray(parallax_error_mas, float)
    z = rng.standard_normal((plx.size, n_samples), dtype=np.float32)  # drawn for all stars: the same stream
    usable = np.isfinite(plx) & np.isfinite(err)
    med = np.full(plx.size, np.nan)
    mad = np.full(plx.size, np.nan)
    if usable.any():
        draws = z[usable]
        draws *= err[usable, None].astype(np.float32)
        draws += plx[usable, None].astype(np.float32)
        rows = evaluator.rows(np.asarray(l_deg, float)[usable], np.asarray(b_deg, float)[usable])
        med[usable], mad[usable] = log_ebv_from_samples(evaluator.ebv_at_parallax_samples(rows, draws))
    return med, mad


def _chunk_task(block, dust_dir, n_samples, seed, block_id):
    rng = np.random.default_rng([seed, block_id])
    med, mad = sample_log_ebv(block[:, 0], block[:, 1], block[:, 2], block[:, 3], DustEvaluator(dust_dir), n_samples, rng)
    return np.stack([med, mad], axis=1)


def log_ebv_dask(
    parallax_mas,
    parallax_error_mas,
    l_deg,
    b_deg,
    dust_dir,
    n_samples=1000,
    chunk_stars=2000,
    seed=0,
    n_workers=1,
    cluster="local",
    client=None,
):
    """logebv and error for every star; stars without a usable parallax (NaN inputs) get NaN.

    ``cluster``: ``local`` runs Dask's threaded scheduler with ``n_workers`` threads;
    ``distributed`` starts a ``dask.distributed.LocalCluster``; a ``client`` (for example on a
    dask-jobqueue SLURMCluster, see ``pipeline.dask_cluster``) takes precedence over both.
    """
    import dask
    import dask.array as da

    inputs = np.stack([parallax_mas, parallax_error_mas, l_deg, b_deg], axis=1).astype(float)
    n = inputs.shape[0]
    arr = da.from_array(inputs, chunks=(chunk_stars, 4))
    n_blocks = arr.numblocks[0]

    def task(block, block_info=None):
        return _chunk_task(block, str(dust_dir), n_samples, seed, block_info[0]["chunk-location"][0])

    out = arr.map_blocks(task, dtype=float, chunks=(arr.chunks[0], (2,)))
    t0 = time.perf_counter()
    where = f"{client}" if client is not None else f"{cluster} ({n_workers} workers)"
    log.info("extinction: %d stars x %d samples in %d chunks on %s", n, n_samples, n_blocks, where)
    if client is not None:
        result = client.compute(out).result()
    elif cluster == "distributed":
        from dask.distributed import Client, LocalCluster

        with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None) as lc, Client(lc) as c:
            result = c.compute(out).result()
    else:
        with dask.config.set(scheduler="threads", num_workers=n_workers):
            result = out.compute()
    dt = time.perf_counter() - t0
    log.info("extinction: %.3g star-samples/s (%.1f s)", n * n_samples / max(dt, 1e-9), dt)
    return result[:, 0], result[:, 1]


def log_ebv_per_star_loop(parallax_mas, parallax_error_mas, l_deg, b_deg, dust_dir, n_samples=1000, seed=0):
    """The plain baseline: one star at a time through mwdust's own ``Combined19()(l, b, d)``."""
    dm = load_combined19(dust_dir)
    rng = np.random.default_rng(seed)
    med = np.full(len(parallax_mas), np.nan)
    mad = np.full(len(parallax_mas), np.nan)
    for i, (p, e, l, b) in enumerate(zip(parallax_mas, parallax_error_mas, l_deg, b_deg)):
        if not (np.isfinite(p) and np.isfinite(e)):
            continue
        d = parallax_samples_to_distance_kpc(p + e * rng.standard_normal(n_samples))
        ebv = dm(np.full(n_samples, l), np.full(n_samples, b), d)
        m, s = log_ebv_from_samples(np.asarray(ebv, float)[None, :])
        med[i], mad[i] = m[0], s[0]
    return med, mad
