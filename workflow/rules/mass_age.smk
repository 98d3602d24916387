# Mass and age tokens of evolved stars (Zhang et al. 2026): the DistMass-style catalogue joined
# onto the catalog, a token store with two more tokens, and XGBoost experts on the same inputs
# as the model. The model itself is the train rule's {name} = mass_age.train.name; its
# evaluation is the evaluate rule's task mass_age.
MASS_AGE_JOIN = {k: v for k, v in config["mass_age"].items() if k in ("columns", "cuts")}


rule mass_age_catalog:
    input:
        catalog=rules.catalog.output.catalog,
        vac=raw_input("distmass", f"{SKY}/distmass.fits"),
        code=code_of("mass_age_catalog"),
    output:
        catalog=f"{RESULTS}/mass_age/catalog.parquet",
        counts=f"{RESULTS}/mass_age/counts.json",
    log:
        f"{RESULTS}/logs/mass_age_catalog.log",
    benchmark:
        f"{RESULTS}/benchmarks/mass_age_catalog.tsv"
    priority: PRIORITY["model_chain"]
    conda:
        "../envs/catalog.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=10,
    params:
        mass_age=MASS_AGE_JOIN,
    script:
        "../scripts/mass_age_catalog.py"


use rule tokens as mass_age_tokens with:
    input:
        catalog=rules.mass_age_catalog.output.catalog,
        code=code_of("tokens"),
    output:
        directory(f"{RESULTS}/mass_age/tokens.zarr"),
    log:
        f"{RESULTS}/logs/mass_age_tokens.log",
    benchmark:
        f"{RESULTS}/benchmarks/mass_age_tokens.tsv"
    params:
        tokens={**config["tokens"], "extra": [*config["tokens"]["extra"], "mass", "age"]},
        upstream={**upstream("sky", "inputs", "catalog", "tokens"), "mass_age": MASS_AGE_JOIN},


use rule baselines as mass_age_baselines with:
    input:
        tokens=rules.mass_age_tokens.output[0],
        code=code_of("baselines"),
    output:
        metrics=f"{RESULTS}/mass_age/baselines/{{expert}}/metrics.json",
        predictions=f"{RESULTS}/mass_age/baselines/{{expert}}/predictions.parquet",
    log:
        f"{RESULTS}/logs/mass_age_baselines_{{expert}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/mass_age_baselines_{{expert}}.tsv"
    params:
        targets=["mass", "age"],
        xgboost=config["baselines"]["xgboost"],
