"""The pixel store of SpectraFM: APOGEE-like spectra as a Zarr group, one row per star.

    <store>/wavelength_aa   (pixels,)         vacuum Angstrom, the ASPCAP grid
    <store>/synthetic       (stars, pixels)   clean model spectra (ASPCAP's best fit, HDU 3)
    <store>/observed        (stars, pixels)   observed continuum-normalised flux (HDU 1), NaN = bad pixel
    <store>/observed_err    (stars, pixels)   its 1-sigma error (HDU 2)
    <store>/stars.parquet   apogee_id, split, the labels teff, logg, fe_h, o_fe, mg_fe and their
                            ``_err``; on the mock also ``true_<label>`` and ``snr``

Every pixel is a token (one shared value embedding plus the wavelength encoding, see model.py);
the labels are ordinary tokens. Mock spectra come from the sky's truth (``build_mock_store``);
real ones from ``aspcapStar-dr17-*.fits`` files and the allStar labels (``build_real_store``).
"""
from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ..io.atomic import atomic_path
from .spectra import SyntheticGap, aspcap_wavelength_aa, observed_spectra, read_aspcapstar, synthetic_spectra

log = logging.getLogger(__name__)

LABELS = ("teff", "logg", "fe_h", "o_fe", "mg_fe")
ALLSTAR_LABELS = {"teff": "TEFF", "logg": "LOGG", "fe_h": "FE_H", "o_fe": "O_FE", "mg_fe": "MG_FE"}
ARRAYS = ("synthetic", "observed", "observed_err")


# -- the mock's chemistry and labels -------------------------------------------------------------
def alpha_over_iron_dex(fe_h_dex, high_alpha):
    """[alpha/Fe] of the two disc sequences: the low-alpha (thin disc) one falls from +0.10 at
    [Fe/H] = -1 to 0 at solar and -0.05 above; the high-alpha (thick disc, halo) plateau is +0.30
    below [Fe/H] = -0.7 and falls by 0.25 dex per dex to +0.125 at solar (+0.10 from +0.1 up)."""
    fe = np.asarray(fe_h_dex, float)
    low = np.clip(-0.1 * fe, -0.05, 0.10)
    high = 0.30 - 0.25 * np.clip(fe + 0.7, 0.0, 0.8)
    return np.where(high_alpha, high, low)


def mock_abundances(fe_h_dex, rng):
    """True [Mg/Fe] and [O/Fe] (dex) of stars: every star below [Fe/H] = -1 and 20% of the others
    are high-alpha; Mg scatters by 0.02 dex about the sequence, O follows it with slope 1.1 and 0.03 dex."""
    fe = np.asarray(fe_h_dex, float)
    high = (fe < -1.0) | (rng.random(fe.size) < 0.2)
    alpha = alpha_over_iron_dex(fe, high)
    mg_fe = alpha + rng.normal(0, 0.02, fe.size)
    o_fe = 1.1 * alpha + rng.normal(0, 0.03, fe.size)
    return mg_fe, o_fe


def aspcap_label_errors(snr):
    """ASPCAP-like 1-sigma label errors (teff K, logg/abundances dex) that shrink with SNR: at SNR 100
    about 12 K, 0.03, 0.010, 0.025, 0.015 dex."""
    f = (100.0 / np.clip(np.asarray(snr, float), 10, None)) ** 0.8
    return {"teff": 12.0 * f, "logg": 0.03 * f, "fe_h": 0.010 * f, "o_fe": 0.025 * f, "mg_fe": 0.015 * f}


def select_mock_stars(truth: pd.DataFrame, n_stars: int, metal_poor_fraction: float, rng, teff_range_k=(3500.0, 7000.0)):
    """Rows of the sky's APOGEE stars with good labels in the line model's Teff range; iron-poor
    stars ([M/H] < -1) make up ``metal_poor_fraction`` of them where there are enough (they are
    rare in the disc, and the transfer test of SpectraFM is about them)."""
    ok = truth["apogee_id"].astype(str).str.len().gt(0) & truth["teff"].between(*teff_range_k)
    if "labels_good" in truth:
        ok &= truth["labels_good"].astype(bool)
    idx = np.flatnonzero(ok.to_numpy())
    poor = idx[truth["m_h"].to_numpy()[idx] < -1.0]
    rich = np.setdiff1d(idx, poor)
    n_poor = min(poor.size, int(round(metal_poor_fraction * n_stars)))
    n_rich = min(rich.size, n_stars - n_poor)
    picked = np.concatenate([rng.choice(poor, n_poor, replace=False), rng.choice(rich, n_rich, replace=False)])
    return np.sort(picked)


def build_mock_store(truth_path, allstar_path, out_path, n_stars: int = 3000, metal_poor_fraction: float = 0.25,
                     gap: SyntheticGap | None = None, bad_pixel_fraction: float = 0.02, split=(0.8, 0.1, 0.1),
                     seed: int = 8, split_seed: int = 8, chunk_stars: int = 256):
    """Mock APOGEE spectra for a subset of the sky's APOGEE stars.

    The observed spectrum is made from the true labels (with the synthetic gap, a continuum ripple,
    noise of the star's allStar SNR and bad pixels); the synthetic one, like ASPCAP's best fit,
    from the ASPCAP-like labels (truth plus their errors) with the synthetic model's physics."""
    from ..io.readers import read_allstar, read_parquet_table

    rng = np.random.default_rng(seed)
    truth = read_parquet_table(truth_path, ("apogee_id", "teff", "logg", "m_h", "labels_good"))
    rows = select_mock_stars(truth, n_stars, metal_poor_fraction, rng)
    stars = truth.iloc[rows].reset_index(drop=True)
    allstar = read_allstar(allstar_path, ["APOGEE_ID", "SNR"]).drop_duplicates("APOGEE_ID").set_index("APOGEE_ID")
    snr = allstar["SNR"].reindex(stars["apogee_id"]).to_numpy(float)
    snr = np.where(np.isfinite(snr) & (snr > 0), snr, 100.0)
    mg_fe, o_fe = mock_abundances(stars["m_h"].to_numpy(float), rng)
    true = pd.DataFrame({"teff": stars["teff"], "logg": stars["logg"], "fe_h": stars["m_h"], "o_fe": o_fe, "mg_fe": mg_fe})
    errors = aspcap_label_errors(snr)
    labels = pd.DataFrame({k: true[k] + errors[k] * rng.standard_normal(len(true)) for k in LABELS})
    table = pd.DataFrame({"apogee_id": stars["apogee_id"].astype(str), **labels, **{f"{k}_err": errors[k] for k in LABELS},
                          **{f"true_{k}": true[k] for k in LABELS}, "snr": snr})

    def spectra(start, stop):
        sl = slice(start, stop)
        observed, err = observed_spectra(true.iloc[sl], snr[sl], np.random.default_rng([seed, start]), gap, bad_pixel_fraction)
        return synthetic_spectra(labels.iloc[sl], gap), observed, err

    write_spectra_store(out_path, aspcap_wavelength_aa(), table, spectra, split, split_seed, chunk_stars,
                        attrs={"source": "mock", "gap": vars(gap or SyntheticGap()), "bad_pixel_fraction": bad_pixel_fraction})


def apogee_id_from_filename(path) -> str:
    """``aspcapStar-dr17-2M00000002+7417074.fits`` -> ``2M00000002+7417074``."""
    m = re.match(r"aspcapStar-[^-]+-(.+)\.fits(\.gz)?$", Path(path).name)
    if not m:
        raise ValueError(f"{path}: not an aspcapStar-<release>-<APOGEE_ID>.fits file name")
    return m.group(1)


def build_real_store(aspcapstar_paths, allstar_path, out_path, split=(0.8, 0.1, 0.1), split_seed: int = 8, chunk_stars: int = 256):
    """Real spectra: observed (HDU 1), its error (HDU 2) and ASPCAP's best fit (HDU 3) of each file,
    labelled by its allStar row (TEFF, LOGG, FE_H, O_FE, MG_FE and their _ERR; NaN where ASPCAP
    gave none, which the training skips)."""
    from ..io.readers import read_allstar

    paths = sorted(Path(p) for p in aspcapstar_paths)
    if not paths:
        raise FileNotFoundError("inputs.aspcapstar: no aspcapStar-*.fits files found; point it at a folder of them")
    cols = ["APOGEE_ID"] + [c for k in LABELS for c in (ALLSTAR_LABELS[k], ALLSTAR_LABELS[k] + "_ERR")]
    allstar = read_allstar(allstar_path, cols).drop_duplicates("APOGEE_ID").set_index("APOGEE_ID")
    ids = [apogee_id_from_filename(p) for p in paths]
    missing = [i for i in ids if i not in allstar.index]
    if missing:
        raise ValueError(f"{allstar_path}: {len(missing)} aspcapStar files have no allStar row (APOGEE_ID), e.g. {missing[:3]}")
    rows = allstar.loc[ids]
    table = pd.DataFrame({"apogee_id": ids, **{k: rows[ALLSTAR_LABELS[k]].to_numpy(float) for k in LABELS},
                          **{f"{k}_err": rows[ALLSTAR_LABELS[k] + "_ERR"].to_numpy(float) for k in LABELS}})
    lam = read_aspcapstar(paths[0])[0]

    def spectra(start, stop):
        out = [np.empty((stop - start, lam.size), np.float32) for _ in ARRAYS]
        for i, p in enumerate(paths[start:stop]):
            w, flux, err, fit = read_aspcapstar(p)
            if not np.allclose(w, lam, rtol=1e-7):
                raise ValueError(f"{p}: its wavelength grid differs from {paths[0]}'s")
            out[0][i], out[1][i], out[2][i] = fit, flux, err
        return tuple(out)

    write_spectra_store(out_path, lam, table, spectra, split, split_seed, chunk_stars, attrs={"source": "aspcapStar"})


def write_spectra_store(path, wavelength_aa, table: pd.DataFrame, spectra, split, split_seed, chunk_stars, attrs: dict):
    """Write the store atomically; ``spectra(start, stop)`` returns (synthetic, observed, observed_err) of those rows."""
    import zarr

    from ..tokens.store import SPLIT_NAMES, assign_split

    path = Path(path)
    n, p = len(table), len(wavelength_aa)
    with atomic_path(path) as tmp:
        root = zarr.open_group(str(tmp), mode="w", zarr_format=3)
        root.create_array("wavelength_aa", shape=(p,), chunks=(p,), dtype="float64")[:] = np.asarray(wavelength_aa, float)
        chunk = max(1, min(chunk_stars, n))
        arrays = {name: root.create_array(name, shape=(n, p), chunks=(chunk, p), dtype="float32", fill_value=np.nan) for name in ARRAYS}
        t0 = time.perf_counter()
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            for name, block in zip(ARRAYS, spectra(start, stop)):
                arrays[name][start:stop] = np.asarray(block, np.float32)
            rate = stop / max(time.perf_counter() - t0, 1e-9)
            log.info("spectra %d/%d  %.0f stars/s  ETA %.0f s", stop, n, rate, (n - stop) / rate)
        table = table.assign(split=np.asarray(SPLIT_NAMES)[assign_split(n, tuple(split), split_seed)])
        table.to_parquet(tmp / "stars.parquet", index=False)
        root.attrs.update({"labels": list(LABELS), "n_stars": int(n), "n_pixels": int(p), **attrs})
    log.info("%s: %d stars x %d pixels (%s)", path, n, p, attrs.get("source"))


class SpectraStore:
    """Read access: the star table and pixel blocks (rows x chosen pixel columns) in memory."""

    def __init__(self, path):
        import zarr

        self.path = Path(path)
        if not (self.path / "stars.parquet").exists():
            raise FileNotFoundError(f"{path}: not a spectra store (no stars.parquet); run the apogee_spectra rule first")
        self.root = zarr.open_group(str(self.path), mode="r")
        self.stars = pd.read_parquet(self.path / "stars.parquet")
        self.wavelength_aa = self.root["wavelength_aa"][:]
        self.labels = tuple(self.root.attrs["labels"])

    def pixels_in(self, lo_aa=None, hi_aa=None, centre_aa=None, n_pixels=None) -> np.ndarray:
        """Pixel columns within [lo, hi) Angstrom, or the ``n_pixels`` nearest ``centre_aa``."""
        lam = self.wavelength_aa
        if centre_aa is not None:
            i0 = int(np.clip(np.searchsorted(lam, centre_aa) - n_pixels // 2, 0, lam.size - n_pixels))
            return np.arange(i0, i0 + n_pixels)
        lo = -np.inf if lo_aa is None else lo_aa
        hi = np.inf if hi_aa is None else hi_aa
        return np.flatnonzero((lam >= lo) & (lam < hi))

    def read(self, kind: str, rows, columns) -> np.ndarray:
        """(rows x columns) float32 of ``synthetic``/``observed``; observed pixels whose error is
        not finite or above 1 (ASPCAP's flag for a bad pixel) become NaN."""
        if kind not in ("synthetic", "observed"):
            raise ValueError(f"spectra kind {kind!r}: use synthetic or observed")
        rows = np.asarray(rows)
        sl = slice(int(columns[0]), int(columns[-1]) + 1)
        contiguous = np.array_equal(columns, np.arange(sl.start, sl.stop))
        block = self.root[kind].get_orthogonal_selection((rows, sl))
        if kind == "observed":
            err = self.root["observed_err"].get_orthogonal_selection((rows, sl))
            block = np.where(np.isfinite(err) & (err <= 1.0), block, np.nan)
        block = np.asarray(block, np.float32)
        return block if contiguous else block[:, np.asarray(columns) - sl.start]
