# The contrastive star search (appendix C): the trained model's encoder, copied twice and fine-tuned
# with the soft-target contrastive loss, and the test-split database of spectra embeddings. It is
# scored by the evaluate rule's task search; `python -m pipeline search` queries it.


rule search_train:
    input:
        model=f"{RESULTS}/models/{BASE_MODEL}/model.pt",
        tokens=rules.tokens.output[0],
        code=code_of("search_train"),
    output:
        model=f"{RESULTS}/search/search.pt",
        config=f"{RESULTS}/search/config.json",
        history=f"{RESULTS}/search/history.csv",
        database=f"{RESULTS}/search/database.parquet",
    log:
        f"{RESULTS}/logs/search_train.log",
    benchmark:
        f"{RESULTS}/benchmarks/search_train.tsv"
    conda:
        "../envs/model.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
        gpu=config["train"]["gpus"],
    params:
        search={k: v for k, v in config["search"].items() if k != "queries"},
    script:
        "../scripts/search_train.py"
