# Stage 5: expert XGBoost models, one per input set and target (the evaluation's yardstick).


rule baselines:
    input:
        tokens=rules.tokens.output[0],
        code=code_of("baselines"),
    output:
        metrics=f"{RESULTS}/baselines/{{expert}}/metrics.json",
        predictions=f"{RESULTS}/baselines/{{expert}}/predictions.parquet",
    log:
        f"{RESULTS}/logs/baselines_{{expert}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/baselines_{{expert}}.tsv"
    conda:
        "../envs/model.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        targets=lambda w: EXPERTS[w.expert][0],
        xgboost=lambda w: EXPERTS[w.expert][1],
    script:
        "../scripts/baselines.py"
