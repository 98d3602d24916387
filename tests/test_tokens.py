import numpy as np
import pandas as pd
import pytest

from pipeline.hashing import config_hash
from pipeline.tokens.store import assign_split, build_token_store, lazy_tokens, open_token_store, robust_standardisation
from pipeline.tokens.vocab import BASE_VOCABULARY, vocabulary


def test_vocabulary_is_the_papers_118_in_order():
    v = vocabulary()
    assert len(v) == 118 and v[:2] == ("bp0", "bp1") and v[55] == "rp0"
    assert v[110:] == ("bprp", "jh", "jk", "teff", "logg", "m_h", "logebv", "g_fakemag")
    assert vocabulary(["mass", "age"])[-2:] == ("mass", "age")
    with pytest.raises(ValueError):
        vocabulary(["teff"])


def test_split_is_seeded_and_sized():
    a, b = assign_split(1000, seed=3), assign_split(1000, seed=3)
    np.testing.assert_array_equal(a, b)
    assert np.bincount(a).tolist() == [800, 100, 100]
    assert (assign_split(1000, seed=4) != a).any()


def test_standardisation_is_median_and_mad_std_of_train_rows():
    v = np.array([[1.0, np.nan], [2.0, 5.0], [3.0, 7.0], [100.0, 100.0]])
    med, mad = robust_standardisation(v, np.array([True, True, True, False]))
    np.testing.assert_allclose(med, [2.0, 6.0])
    np.testing.assert_allclose(mad, [1.4826, 1.4826])


def _catalog(n=1000, seed=0):
    rng = np.random.default_rng(seed)
    cols = {"source_id": np.arange(1, n + 1)}
    for t in BASE_VOCABULARY:
        x = rng.normal(size=n)
        x[rng.random(n) < 0.2] = np.nan
        cols[t], cols[f"{t}_err"] = x, np.abs(rng.normal(size=n)) * 0.1
    return pd.DataFrame(cols)


def test_store_round_trips_lazily_in_aligned_chunks(tmp_path):
    cat = _catalog()
    attrs = build_token_store(cat, tmp_path / "stars.zarr", vocabulary(), chunk_stars=256, config={"a": 1})
    root = open_token_store(tmp_path / "stars.zarr")
    assert root["values"].shape == (1000, 118) and root["values"].dtype == np.float32 and root["values"].chunks == (256, 118)
    values, errors = lazy_tokens(tmp_path / "stars.zarr")
    assert values.chunks[0] == (256, 256, 256, 232)  # Dask chunks are the Zarr chunks
    np.testing.assert_array_equal(values.compute(), cat[list(vocabulary())].to_numpy(np.float32))
    err = errors.compute()
    assert np.isnan(err[np.isnan(values.compute())]).all()  # no error without a value
    np.testing.assert_array_equal(root["source_id"][:], cat.source_id)
    assert list(root.attrs["vocabulary"]) == list(vocabulary())
    train = root["split"][:] == 0
    med, _ = robust_standardisation(cat[list(vocabulary())].to_numpy(), train)
    np.testing.assert_allclose(root.attrs["median"], med)
    assert attrs["config_hash"] == config_hash({"a": 1}) != config_hash({"a": 2})


def test_store_write_is_atomic(tmp_path):
    cat = _catalog(50)
    with pytest.raises(ValueError, match="catalog lacks columns"):
        build_token_store(cat.drop(columns=["teff_err"]), tmp_path / "stars.zarr", vocabulary())
    assert not (tmp_path / "stars.zarr").exists() and not list(tmp_path.iterdir())
