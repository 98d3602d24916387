"""Rule tokens: catalog -> results/tokens/stars.zarr."""

import pandas as pd

from pipeline.settings import keywords
from pipeline.tokens.store import build_token_store
from pipeline.tokens.vocab import vocabulary
from pipeline.workflow.tracking import rule_run

sm = snakemake  # noqa: F821
with rule_run(sm) as run:
    log = run.log
    p = dict(sm.params.tokens)
    settings = keywords(build_token_store, p, "tokens", ignore=("extra", "split"))
    if p.get("split") is not None:
        settings["split_fractions"] = tuple(p["split"][k] for k in ("train", "val", "test"))
    vocab = vocabulary(p.get("extra") or ())
    attrs = build_token_store(pd.read_parquet(sm.input.catalog), sm.output[0], vocab, **settings, config=sm.params.upstream)
    log.info("token store: %d tokens, config hash %s", len(vocab), attrs["config_hash"])
