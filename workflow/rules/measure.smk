rule measure:
    input:
        unpack(measure_inputs),
    output:
        # update(): Snakemake must not delete a measured run before its new attempt has succeeded;
        # the job itself moves the old run to results/superseded/ when the new one is complete.
        run=update(f"{RUN_FOLDER}/run.json"),
        requests=update(f"{RUN_FOLDER}/requests.parquet"),
        timeline=update(f"{RUN_FOLDER}/timeline.parquet"),
    log:
        "results/logs/measure/{model}/{engine}-{provider}/rep{rep}.log",
    priority: run_priority
    conda:
        serving_env
    threads: machine_cores
    resources:
        machine=1,
    params:
        identity=measure_identity,
    script:
        "../scripts/measure.py"
