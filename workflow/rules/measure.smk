rule measure:
    input:
        unpack(measure_inputs),
    output:
        run=f"{RUN_FOLDER}/run.json",
        requests=f"{RUN_FOLDER}/requests.parquet",
        timeline=f"{RUN_FOLDER}/timeline.parquet",
    log:
        f"results/logs/measure/{{model}}/{{engine}}-{{provider}}/rep{{rep}}.log",
    priority: run_priority
    conda:
        serving_env
    threads: workflow.cores
    resources:
        machine=1,
    params:
        settings=measure_settings,
        failed_dir=lambda wildcards: f"results/failed/{wildcards.model}/{wildcards.engine}-{wildcards.provider}/rep{wildcards.rep}",
    script:
        "../scripts/measure.py"
