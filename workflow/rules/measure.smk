rule measure:
    input:
        unpack(measure_inputs),
    output:
        # update(): Snakemake must not delete a measured run before its new attempt has succeeded;
        # the job itself moves the old run to results/superseded/ when the new one is complete.
        run=update(LAYOUT.run_pattern("run.json")),
        requests=update(LAYOUT.run_pattern("requests.parquet")),
        timeline=update(LAYOUT.run_pattern("timeline.parquet")),
    log:
        "results/logs/measure/{model}/{engine}-{provider}/rep{rep}.log",
    priority: run_priority
    conda:
        serving_env
    threads: machine_cores
    resources:
        machine=1,
        mem_mb=job_mem_mb("measure"),
    params:
        identity=measure_identity,
    script:
        "../scripts/measure.py"
