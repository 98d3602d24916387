# Stage 3: the tokenized data set (Zarr v3), with the split and the standardisation.


rule tokens:
    input:
        catalog=rules.catalog.output.catalog,
        code=code_of("tokens"),
    output:
        directory(f"{RESULTS}/tokens/stars.zarr"),
    log:
        f"{RESULTS}/logs/tokens.log",
    benchmark:
        f"{RESULTS}/benchmarks/tokens.tsv"
    priority: PRIORITY["model_chain"]
    conda:
        "../envs/catalog.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=20,
    params:
        tokens=config["tokens"],
        upstream=upstream("sky", "inputs", "catalog", "tokens"),
    script:
        "../scripts/tokens.py"
