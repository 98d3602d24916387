# Stage 4: the stellar Transformer, trained on the token store's train split.


rule train:
    input:
        tokens=lambda w: token_store(w.name),
        init=lambda w: init_model(w.name),
        code=code_of("train"),
    output:
        model=f"{RESULTS}/models/{{name}}/model.pt",
        config=f"{RESULTS}/models/{{name}}/config.json",
        history=f"{RESULTS}/models/{{name}}/history.csv",
    log:
        f"{RESULTS}/logs/train_{{name}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_{{name}}.tsv"
    # with train.import_from the base model is imported (rule import_model), not trained
    wildcard_constraints:
        name=TRAINED_MODEL_NAMES,
    # the model is the critical path (evaluation, search, mass/age wait on it): on a few cores it
    # runs before the XGBoost baselines rather than after them
    priority: PRIORITY["model_chain"]
    conda:
        "../envs/model.yaml"
    threads: 2
    resources:
        mem_mb=16000,
        runtime=720,
        # GPUs per rank x data-parallel ranks (train.processes), all on the job's node
        gpu=lambda w: train_settings(w.name)["gpus"] * train_settings(w.name)["processes"],
    params:
        train=lambda w: train_settings(w.name),
    script:
        "../scripts/train.py"


# train.import_from: the published model (or any folder in its format) stands in for the base
# model: every rule that takes results/models/<name>/ then evaluates it
if IMPORT_FROM:

    rule import_model:
        input:
            lb23=published_model_files(),
            code=code_of("import_model"),
        output:
            model=f"{RESULTS}/models/{BASE_MODEL}/model.pt",
            config=f"{RESULTS}/models/{BASE_MODEL}/config.json",
        log:
            f"{RESULTS}/logs/import_model_{BASE_MODEL}.log",
        benchmark:
            f"{RESULTS}/benchmarks/import_model_{BASE_MODEL}.tsv"
        conda:
            "../envs/model.yaml"
        threads: 1
        resources:
            mem_mb=4000,
            runtime=10,
        params:
            source=IMPORT_FROM,
        script:
            "../scripts/import_model.py"


rule model_check:
    input:
        model=rules.train.output.model,
        tokens=lambda w: token_store(w.name),
        catalog=lambda w: f"{RESULTS}/mass_age/catalog.parquet" if is_mass_age(w.name) else rules.catalog.output.catalog,
        truth=mock_only(f"{SKY}/truth.parquet"),
        code=code_of("model_check"),
    output:
        report(
            f"{RESULTS}/models/{{name}}/heldout.json",
            caption="../report/heldout.rst",
            category="Model",
        ),
    log:
        f"{RESULTS}/logs/model_check_{{name}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/model_check_{{name}}.tsv"
    conda:
        "../envs/model.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=30,
    script:
        "../scripts/model_check.py"
