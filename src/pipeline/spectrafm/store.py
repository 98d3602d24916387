"""The pixel store of SpectraFM: APOGEE-like spectra as a Zarr group, one row per star.

    <store>/wavelength_aa   (pixels,)         vacuum Angstrom, the ASPCAP grid
    <store>/synthetic       (stars, pixels)   clean model spectra (ASPCAP's best fit, HDU 3)
    <store>/observed        (stars, pixels)   observed continuum-normalised flux (HDU 1), NaN = bad pixel
    <store>/observed_err    (stars, pixels)   its 1-sigma error (HDU 2)
    <store>/stars.parquet   apogee_id, split, the labels teff, logg, fe_h, o_fe, mg_fe and their
                            ``_err``; on the mock also ``true_<label>`` and ``snr``

Every pixel is a token (one shared value embedding plus the wavelength encoding, see model.py);
the labels are ordinary tokens. Mock spectra come from the sky's truth (sky.apogee_store.build_mock_store);
real ones from ``aspcapStar-dr17-*.fits`` files and the allStar labels (``build_real_store``).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ..io.atomic import atomic_path
from .aspcap import apogee_id_from_filename, read_aspcapstar

log = logging.getLogger(__name__)

LABELS = ("teff", "logg", "fe_h", "o_fe", "mg_fe")
ALLSTAR_LABELS = {"teff": "TEFF", "logg": "LOGG", "fe_h": "FE_H", "o_fe": "O_FE", "mg_fe": "MG_FE"}
ARRAYS = ("synthetic", "observed", "observed_err")


def split_keywords(split: dict | None, where: str = "spectrafm.split") -> dict:
    """``spectrafm.split`` ({train, val, test, seed}) as the store builders' ``split``/``split_seed``
    (the builders' signatures hold the defaults)."""
    split = dict(split or {})
    unknown = sorted(set(split) - {"train", "val", "test", "seed"})
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; known: ['seed', 'test', 'train', 'val']")
    out = {"split_seed": split.pop("seed")} if "seed" in split else {}
    if split:
        missing = sorted({"train", "val", "test"} - set(split))
        if missing:
            raise ValueError(f"{where}: give all of train, val and test (missing {missing})")
        out["split"] = (split["train"], split["val"], split["test"])
    return out


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
    table = pd.DataFrame(
        {
            "apogee_id": ids,
            **{k: rows[ALLSTAR_LABELS[k]].to_numpy(float) for k in LABELS},
            **{f"{k}_err": rows[ALLSTAR_LABELS[k] + "_ERR"].to_numpy(float) for k in LABELS},
        }
    )
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
        self.attrs = dict(self.root.attrs)  # e.g. source; the mock's survey_fe_h_poor_fraction

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
        """(rows x columns) float32 of ``synthetic``/``observed``/``observed_err``; observed pixels
        whose error is not finite or above 1 (ASPCAP's flag for a bad pixel) become NaN."""
        if kind not in ARRAYS:
            raise ValueError(f"spectra kind {kind!r}: use one of {', '.join(ARRAYS)}")
        rows = np.asarray(rows)
        sl = slice(int(columns[0]), int(columns[-1]) + 1)
        contiguous = np.array_equal(columns, np.arange(sl.start, sl.stop))
        block = self.root[kind].get_orthogonal_selection((rows, sl))
        if kind == "observed":
            err = self.root["observed_err"].get_orthogonal_selection((rows, sl))
            block = np.where(np.isfinite(err) & (err <= 1.0), block, np.nan)
        block = np.asarray(block, np.float32)
        return block if contiguous else block[:, np.asarray(columns) - sl.start]
