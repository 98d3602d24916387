"""The token store ``stars.zarr`` (Zarr v3): values and errors of every token for every star.

Layout (docs/stages.md, "The catalog and the tokens"):

- ``values``, ``errors``: float32 (stars x vocabulary), NaN = missing, chunked along stars
- ``source_id``: int64 (stars,), 0 where a star has no Gaia match
- ``split``: int8 (stars,), 0 = train, 1 = val, 2 = test (seeded)
- attributes: ``vocabulary`` (in order), ``median`` and ``mad_std`` per token over the train
  split (the standardisation), ``split_names``, ``config_hash``, ``n_stars``
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..hashing import config_hash
from ..io.atomic import atomic_path
from ..stats import median_mad_std

SPLIT_NAMES = ("train", "val", "test")


def assign_split(n: int, fractions=(0.8, 0.1, 0.1), seed: int = 0) -> np.ndarray:
    """Seeded split codes (0 train, 1 val, 2 test) with exactly round(f n) stars in val and test."""
    if abs(sum(fractions) - 1.0) > 1e-9 or min(fractions) < 0:
        raise ValueError(f"split fractions {fractions} must be non-negative and sum to 1")
    order = np.random.default_rng(seed).permutation(n)
    n_val, n_test = int(round(fractions[1] * n)), int(round(fractions[2] * n))
    split = np.zeros(n, np.int8)
    split[order[:n_val]] = 1
    split[order[n_val : n_val + n_test]] = 2
    return split


def robust_standardisation(values: np.ndarray, rows: np.ndarray):
    """Per-token median and MAD standard deviation (1.4826 MAD) over ``rows``; NaN ignored."""
    stats = np.array([median_mad_std(col) for col in np.asarray(values)[rows].T]).reshape(-1, 2)
    med, mad = stats[:, 0], stats[:, 1]
    # a token with fewer than two distinct train values (a tiny sky's rare high-order coefficient)
    # has no spread to divide by: keep it in physical units rather than dividing by 0 or NaN
    flat = ~(mad > 0)
    return np.where(np.isfinite(med), med, 0.0), np.where(flat, 1.0, mad)


def write_token_store(path, values, errors, source_id, split, vocab, attrs: dict, chunk_stars: int = 4096):
    """Write the store atomically (to a temporary sibling, then rename); Dask chunks match Zarr chunks."""
    path = Path(path)
    n, v = values.shape
    if errors.shape != (n, v) or len(vocab) != v or len(source_id) != n or len(split) != n:
        raise ValueError(
            f"token store: inconsistent shapes values {values.shape}, errors {errors.shape}, vocabulary {len(vocab)}, "
            f"source_id {len(source_id)}, split {len(split)}"
        )
    with atomic_path(path) as tmp:
        _write_arrays(tmp, values, errors, vocab, source_id, split, chunk_stars, attrs)


def _write_arrays(tmp, values, errors, vocab, source_id, split, chunk_stars, attrs):
    import zarr

    n, v = values.shape
    chunk = max(1, min(chunk_stars, n))
    root = zarr.open_group(str(tmp), mode="w", zarr_format=3)
    every_chunk = {"write_empty_chunks": True}  # so that a missing chunk file is a damaged store, never "all NaN"
    for name, arr in (("values", values), ("errors", errors)):
        z = root.create_array(name, shape=(n, v), chunks=(chunk, v), dtype="float32", fill_value=np.nan, config=every_chunk)
        for start in range(0, n, chunk):  # one write per Zarr chunk
            z[start : start + chunk] = np.asarray(arr[start : start + chunk], np.float32)
    root.create_array("source_id", shape=(n,), chunks=(chunk,), dtype="int64", config=every_chunk)[:] = np.asarray(source_id, np.int64)
    root.create_array("split", shape=(n,), chunks=(chunk,), dtype="int8", config=every_chunk)[:] = np.asarray(split, np.int8)
    root.attrs.update({"vocabulary": list(vocab), "split_names": list(SPLIT_NAMES), "n_stars": int(n), **attrs})


STORE_ARRAYS = ("values", "errors", "source_id", "split")


def open_token_store(path):
    """The store as a zarr group (arrays are read lazily, chunk by chunk), after a look at its
    structure: its attributes, its four arrays of matching length, and every chunk file present
    (a store that lost files is named, not read as NaN)."""
    import zarr

    from ..io.readers import InputFileError, reading

    if not Path(path).exists():
        raise FileNotFoundError(f"{path}: token store not found; run the tokens rule first")
    with reading(path, "a Zarr token store"):
        root = zarr.open_group(str(path), mode="r")
        missing = [k for k in ("vocabulary", "split_names", "n_stars") if k not in root.attrs]
        missing += [a for a in STORE_ARRAYS if a not in root]
        if missing:
            raise InputFileError(f"{path}: not a complete token store (missing {missing}); rerun the tokens rule")
        n = int(root.attrs["n_stars"])
        for name in STORE_ARRAYS:
            arr = root[name]
            if arr.shape[0] != n or arr.nchunks_initialized != arr.nchunks:
                raise InputFileError(
                    f"{path}: array {name} is damaged ({arr.nchunks_initialized} of {arr.nchunks} chunk "
                    f"files, {arr.shape[0]} of {n} rows); delete the store and rerun the tokens rule"
                )
    return root


def split_table(path, split: str, tokens=None):
    """One split of the store as a DataFrame: token values, ``<token>_err``, ``source_id`` and ``row``
    (the star's row in the store), for all tokens or the given ones, in physical units."""
    import pandas as pd

    root = open_token_store(path)
    vocab = list(root.attrs["vocabulary"])
    tokens = list(vocab if tokens is None else tokens)
    missing = [t for t in tokens if t not in vocab]
    if missing:
        raise ValueError(f"{path}: tokens {missing} are not in the store's vocabulary")
    rows = np.nonzero(root["split"][:] == SPLIT_NAMES.index(split))[0]
    cols = [vocab.index(t) for t in tokens]
    values = root["values"].get_orthogonal_selection((rows, cols))
    errors = root["errors"].get_orthogonal_selection((rows, cols))
    df = pd.concat([pd.DataFrame(values, columns=tokens), pd.DataFrame(errors, columns=[f"{t}_err" for t in tokens])], axis=1)
    df["source_id"] = root["source_id"].get_orthogonal_selection((rows,))
    df["row"] = rows
    return df


def lazy_tokens(path):
    """``values`` and ``errors`` as Dask arrays whose chunks are the store's Zarr chunks."""
    import dask.array as da

    root = open_token_store(path)
    return da.from_zarr(root["values"]), da.from_zarr(root["errors"])


def build_token_store(catalog, path, vocab, split_fractions=(0.8, 0.1, 0.1), split_seed=0, chunk_stars=4096, config=None):
    """Tokens from a catalog DataFrame whose columns are token names (and ``<token>_err``)."""
    missing = [t for t in vocab if t not in catalog.columns or f"{t}_err" not in catalog.columns]
    if missing:
        raise ValueError(f"catalog lacks columns for tokens {missing[:10]} (and their _err); add them or remove them from the vocabulary")
    values = catalog[list(vocab)].to_numpy(np.float64)
    errors = catalog[[f"{t}_err" for t in vocab]].to_numpy(np.float64)
    errors = np.where(np.isfinite(values), errors, np.nan)
    split = assign_split(len(catalog), split_fractions, split_seed)
    med, mad = robust_standardisation(values, split == 0)
    attrs = {
        "median": [float(x) for x in med],
        "mad_std": [float(x) for x in mad],
        "split_fractions": list(split_fractions),
        "split_seed": int(split_seed),
        "config_hash": config_hash(config or {}),
    }
    write_token_store(path, values, errors, catalog.source_id.to_numpy(), split, vocab, attrs, chunk_stars)
    return attrs
