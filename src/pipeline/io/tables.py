"""Named tables in one Parquet file: a task's cached predictions (the figures are drawn from these
only), the all-sky catalogue's summary tables. A ``table`` column tells them apart; each table's own
columns are kept in the file's metadata, so each reads back with exactly its columns."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from .atomic import atomic_path


def write_tables(path, tables: dict[str, pd.DataFrame]):
    """Write named tables into one Parquet file (a ``table`` column tells them apart; each table's
    own columns are kept in the file's metadata); atomic."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parts = [t.assign(table=name) for name, t in tables.items()]
    out = pd.concat(parts, ignore_index=True, sort=False)
    for c in out.columns[out.dtypes == object]:  # noqa: E721 (a dtype, not a type) array-valued columns: the other tables' rows become nulls
        if any(isinstance(v, (np.ndarray, list)) for v in out[c]):
            out[c] = [v if isinstance(v, (np.ndarray, list)) else None for v in out[c]]
    table = pa.Table.from_pandas(out, preserve_index=False)
    layout = json.dumps({name: [str(c) for c in t.columns] for name, t in tables.items()})
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), b"pipeline_tables": layout.encode()})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_tables(path) -> dict[str, pd.DataFrame]:
    """The named tables of a task's cache, each with exactly its own columns."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    layout = json.loads(table.schema.metadata[b"pipeline_tables"])
    df = table.to_pandas()
    out = {}
    for name, cols in layout.items():
        t = df.loc[df["table"] == name, cols].reset_index(drop=True)
        for c in t.columns[t.dtypes == object]:  # noqa: E721 (a dtype, not a type)
            if len(t) and isinstance(t[c].iloc[0], (np.ndarray, list)):
                t[c] = [np.asarray(v, float) for v in t[c]]
        out[name] = t
    return out
