"""The model's answers for every Gaia XP source, one partition of the archive's bulk files at a time.

A partition is one ``XpContinuousMeanSpectrum_<range>`` file and the ``GaiaSource`` file(s) of
the same source_id range. Each is reduced exactly as the catalog stage reduces APOGEE's stars,
by the same functions (``catalog.build``): the XP cuts (G, BP-RP, excess factor), coefficients
divided by the G flux with Gaia's relevancy, the parallax zero point, the pseudo-luminosity
g_fakemag, BP-RP with its error, and ln E(B-V) from Monte Carlo samples of the parallax through
the dust map. The clip that the catalog made at percentiles of its own stars becomes the
training catalogue's range here (``domain``): a coefficient outside it is NaN, as it would have
been in training. Then the model answers every request of every source in one pass per batch
(the encoder once, all requests as query tokens of one decoder pass).

Written per source (``results/catalog_all/<range>.parquet``): source_id, position, G, each
requested token with its 1-sigma error, the inputs the reduction made (g_fakemag and logebv from
the parallax and the map, where usable), quality flags and an out-of-distribution bit mask
(``OOD_BITS``): G or BP-RP beyond the training stars' range, a coefficient beyond it, XP failing
the cuts or incomplete. Memory is bounded by one partition.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..baselines.xgb import resolve_inputs
from ..catalog.build import N_COEFF, CatalogConfig, bprp_and_error, normalised_xp, parallax_columns, xp_frame, xp_quality
from ..catalog.crossmatch import GAIA_COLUMNS
from ..catalog.extinction import log_ebv_dask
from ..gaia.bulk import file_range, healpix8
from ..io.readers import InputFileError, read_gaia_source
from ..io.xp_readers import read_xp_coefficients
from ..settings import from_dict

log = logging.getLogger(__name__)

GAIA_APPLY_COLUMNS = (*GAIA_COLUMNS, "l", "b")
OOD_BITS = {  # bit: what lies outside the training catalogue
    1: "G magnitude beyond the training stars' range",
    2: "BP-RP beyond the training stars' range",
    4: "an XP coefficient beyond the training catalogue's range (set to NaN)",
    8: "XP spectrum failing the cuts or incomplete (answers from photometry alone)",
    16: "no gaia_source row (no photometry, no parallax)",
}


@dataclass
class CatalogAllConfig:
    """``catalog_all``: what the model is given and asked for every XP source."""

    enabled: bool = True  # on the mock: sky.xp_all's sources; on real data: inputs.xp_all_* (off when they are empty)
    inputs: object = "xp30_gaia"  # a named input set (baselines.xgb.INPUT_SETS) or a list of tokens; xp30_gaia: XP
    # bp/rp 0-29, BP-RP, g_fakemag and logebv where the parallax is usable
    requests: tuple = ("teff", "logg", "m_h", "logebv", "g_fakemag")  # answered in one decoder pass per batch
    extinction_samples: int = 200  # parallax samples per source through the dust map (the catalog: 1000)
    chunk_stars: int = 5000  # sources per Dask chunk of the extinction sampling
    batch_size: int = 4096  # sources per inference batch
    seed: int = 1  # the seed of the parallax samples
    device: str = "auto"  # auto | cpu | cuda
    precision: str = "auto"  # auto (bf16 autocast on CUDA, float32 on the CPU) | float32 | bfloat16

    @classmethod
    def from_dict(cls, d):
        return from_dict(cls, d, "catalog_all")


# -- the training catalogue's range ----------------------------------------------------------------
def training_domain(catalog: pd.DataFrame) -> dict:
    """The ranges an answer can be trusted within: of the catalog's stars with XP, G and BP-RP
    (min, max), and every normalised coefficient's (min, max), which is what the catalog's
    percentile clip kept."""
    xp = catalog[catalog.has_xp.astype(bool)]
    if xp.empty:
        raise ValueError("the catalog has no star with an XP spectrum: no range to judge other sources against")
    coef = [f"{b}{k}" for b in ("bp", "rp") for k in range(N_COEFF)]
    return {
        "n_stars": int(len(xp)),
        "phot_g_mean_mag": [float(xp.phot_g_mean_mag.min()), float(xp.phot_g_mean_mag.max())],
        "bprp": [float(xp.bprp.min()), float(xp.bprp.max())],
        "xp": {c: [float(xp[c].min()), float(xp[c].max())] for c in coef if xp[c].notna().any()},
    }


def catalog_domain(catalog_path) -> dict:
    """``training_domain`` of a catalog file (only the columns it needs are read)."""
    columns = ["has_xp", "phot_g_mean_mag", "bprp", *[f"{b}{k}" for b in ("bp", "rp") for k in range(N_COEFF)]]
    return training_domain(pd.read_parquet(catalog_path, columns=columns))


def write_domain(catalog_path, out_path):
    from ..io.atomic import write_json

    write_json(catalog_domain(catalog_path), out_path)


# -- partitions --------------------------------------------------------------------------------------
# -- one partition ---------------------------------------------------------------------------------
def read_partition(gaia_paths, xp_path, check_range: bool = True) -> tuple[pd.DataFrame, dict]:
    """The XP sources of one partition with their gaia_source columns (joined on source_id):
    (gaia table aligned to the XP rows, NaN where a source has no gaia_source row; XP arrays).
    ``check_range``: the file is one of the archive's bulk files, its sources within its name's range."""
    sid, xp = read_xp_coefficients(xp_path)
    if check_range:
        lo, hi = file_range(xp_path)
        hpx = healpix8(sid)
        outside = (hpx < lo) | (hpx > hi)
        if outside.any():
            raise InputFileError(
                f"{xp_path}: {int(outside.sum())} source_id(s) outside the file's range {lo}-{hi} (e.g. {sid[outside][:3].tolist()})"
            )
    parts = [read_gaia_source(p, GAIA_APPLY_COLUMNS) for p in gaia_paths]
    gaia = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=GAIA_APPLY_COLUMNS)
    gaia = gaia.drop_duplicates("source_id").set_index("source_id").reindex(sid)
    gaia.index.name = "source_id"
    return gaia.reset_index(), xp


def reduce_partition(
    gaia: pd.DataFrame,
    xp: dict,
    domain: dict,
    dust_dir,
    cfg: CatalogConfig,
    n_samples: int,
    chunk_stars: int,
    seed: int,
    n_workers: int = 1,
):
    """The catalog stage's reduction of XP sources (``catalog.build``'s functions): a DataFrame of
    tokens (physical units, NaN = missing) with errors, flags and the OOD bit mask."""
    in_gaia = gaia.phot_g_mean_mag.notna().to_numpy()
    g_mag = gaia.phot_g_mean_mag.to_numpy(float)
    xp_ok = xp_quality(g_mag, gaia.bp_rp, gaia.phot_bp_rp_excess_factor, cfg)
    blocks, xp_ok = normalised_xp(xp, g_mag, xp_ok)
    clipped = np.zeros(len(gaia), bool)
    for b, (coef, _) in blocks.items():
        for k in range(N_COEFF):
            lo, hi = domain["xp"].get(f"{b}{k}", (-np.inf, np.inf))
            with np.errstate(invalid="ignore"):
                out = (coef[:, k] < lo) | (coef[:, k] > hi)
            clipped |= out
            coef[:, k] = np.where(out, np.nan, coef[:, k])
    out = pd.DataFrame(
        {"source_id": gaia.source_id.to_numpy(np.int64), "l": gaia.l.to_numpy(float), "b": gaia.b.to_numpy(float), "phot_g_mean_mag": g_mag}
    )
    par = parallax_columns(gaia, g_mag, cfg)
    out["bprp"], out["bprp_err"] = bprp_and_error(gaia)
    out["g_fakemag"], out["g_fakemag_err"] = par["g_fakemag"], par["g_fakemag_err"]
    usable = par["parallax_usable"]
    plx, plx_err = par["parallax_corrected_mas"], par["parallax_error_mas"]
    if dust_dir is None:  # no map: no ln E(B-V) input (python -m pipeline apply without --dust-dir)
        out["logebv"], out["logebv_err"] = np.nan, np.nan
    else:
        out["logebv"], out["logebv_err"] = log_ebv_dask(
            np.where(usable, plx, np.nan),
            np.where(usable, plx_err, np.nan),
            out.l.to_numpy(),
            out.b.to_numpy(),
            dust_dir,
            n_samples=int(n_samples),
            chunk_stars=int(chunk_stars),
            seed=int(seed),
            n_workers=n_workers,
        )
    out = pd.concat([out, xp_frame(blocks)], axis=1)
    g_lo, g_hi = domain["phot_g_mean_mag"]
    c_lo, c_hi = domain["bprp"]
    with np.errstate(invalid="ignore"):
        ood = (
            np.where((g_mag < g_lo) | (g_mag > g_hi), 1, 0)
            | np.where((out.bprp < c_lo) | (out.bprp > c_hi), 2, 0)
            | np.where(clipped & xp_ok, 4, 0)
            | np.where(~xp_ok, 8, 0)
            | np.where(~in_gaia, 16, 0)
        )
    out["xp_ok"] = xp_ok
    out["parallax_usable"] = usable
    out["zp_flag"] = par["zp_flag"]
    out["ood_flags"] = ood.astype(np.int16)
    out["ood"] = ood != 0
    return out


def answer(model, tokens: pd.DataFrame, inputs, requests, batch_size: int) -> pd.DataFrame:
    """The model's values and 1-sigma errors of ``requests`` given the ``inputs`` present for each
    source (NaN where a source has none of them); one decoder pass answers all requests."""
    inputs = [t for t in inputs if t in tokens]
    cols = [c for t in inputs for c in (t, f"{t}_err") if c in tokens]
    table = tokens[cols]
    n_in = np.isfinite(table[inputs].to_numpy(float)).sum(axis=1)
    result = pd.DataFrame(np.nan, index=tokens.index, columns=[c for t in requests for c in (t, f"{t}_err")])
    rows = n_in > 0
    if rows.any():
        got = model.predict(table[rows], list(requests), batch_size=batch_size)
        result.loc[rows, got.columns] = got.to_numpy()
    result["n_inputs"] = n_in.astype(np.int16)
    return result


def check_tokens(model, cfg: CatalogAllConfig, where) -> list[str]:
    """The inputs of ``cfg`` as tokens; an input or request the model does not know is an error."""
    inputs = resolve_inputs(cfg.inputs)
    unknown = [t for t in (*inputs, *cfg.requests) if t not in model.token_index]
    if unknown:
        raise ValueError(f"catalog_all: token(s) {unknown} are not in the model's vocabulary ({where})")
    return inputs


def answer_partition(gaia, xp, model, domain: dict, dust_dir, cfg: CatalogAllConfig, catalog_cfg: CatalogConfig, n_workers: int = 1):
    """One partition's table: reduce its sources (``reduce_partition``), answer ``cfg.requests``
    from ``cfg.inputs``, and keep the inputs the reduction made beside the answers."""
    inputs = check_tokens(model, cfg, "the model")
    tokens = reduce_partition(gaia, xp, domain, dust_dir, catalog_cfg, cfg.extinction_samples, cfg.chunk_stars, cfg.seed, n_workers)
    answers = answer(model, tokens, inputs, cfg.requests, cfg.batch_size)
    keep = ["source_id", "l", "b", "phot_g_mean_mag", "xp_ok", "parallax_usable", "zp_flag", "ood_flags", "ood"]
    given = tokens[["bprp", "bprp_err", "g_fakemag", "g_fakemag_err", "logebv", "logebv_err"]].add_suffix("_input")
    return pd.concat([tokens[keep], answers, given], axis=1)


def predict_partition(
    gaia_paths, xp_path, model_dir, domain_path, dust_dir, cfg: CatalogAllConfig, catalog_cfg: CatalogConfig, n_workers: int = 1
):
    """Reduce one partition and answer the requests for each of its sources: the output table."""
    from ..model.api import StellarModel

    t0 = time.perf_counter()
    domain = json.loads(Path(domain_path).read_text())
    device = None if cfg.device == "auto" else cfg.device
    model = StellarModel.load(model_dir, device=device, precision=cfg.precision)
    check_tokens(model, cfg, model_dir)
    gaia, xp = read_partition(gaia_paths, xp_path)
    t_read = time.perf_counter()
    out = answer_partition(gaia, xp, model, domain, dust_dir, cfg, catalog_cfg, n_workers)
    t_model = time.perf_counter()
    n = len(out)
    log.info(
        "%s: %d sources (%d with XP passing the cuts, %d flagged out of distribution): read %.1f s, reduce and answer %.1f s; %.0f sources/s",
        Path(xp_path).name,
        n,
        int(out.xp_ok.sum()),
        int(out.ood.sum()),
        t_read - t0,
        t_model - t_read,
        n / max(t_model - t0, 1e-9),
    )
    return out
