"""Rule tokens: catalog -> results/tokens/stars.zarr."""

import pandas as pd

from pipeline.tokens.store import build_token_store
from pipeline.tokens.vocab import vocabulary
from pipeline.tracking import rule_run

sm = snakemake  # noqa: F821
with rule_run(sm) as run:
    log = run.log
    p = sm.params.tokens
    vocab = vocabulary(p.get("extra", []))
    split = p.get("split", {"train": 0.8, "val": 0.1, "test": 0.1})
    attrs = build_token_store(
        pd.read_parquet(sm.input.catalog),
        sm.output[0],
        vocab,
        split_fractions=(split["train"], split["val"], split["test"]),
        split_seed=p.get("split_seed", 0),
        chunk_stars=p.get("chunk_stars", 4096),
        config=sm.params.upstream,
    )
    log.info("token store: %d tokens, config hash %s", len(vocab), attrs["config_hash"])
