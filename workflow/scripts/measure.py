"""Snakemake entry: one measured run of one model in one configuration."""

from pathlib import Path

from serving_energy.core.lifecycle import ParentWatchdog, interruptible
from serving_energy.core.logs import log_to
from serving_energy.core.machine import gpu_present
from serving_energy.core.progress import say
from serving_energy.data.dataset import expected_prompt_count
from serving_energy.serving.protocol import RunInputs, RunLogs, measure_run
from serving_energy.serving.run_settings import RunSettings
from serving_energy.serving.validity import ValidityThresholds
from serving_energy.study.design import run_provenance
from serving_energy.study.footprint import check_fits_machine, machine_memory_mb
from serving_energy.study.layout import ResultsLayout
from serving_energy.study.plan import progress_line, study_plan

with log_to(snakemake.log[0]) as log, interruptible(), ParentWatchdog():
    # A job that cannot fit this machine fails now, naming its need, not by the OOM killer.
    check_fits_machine(snakemake.rule, snakemake.resources.mem_mb, snakemake.wildcards.model)  # noqa: F821
    inputs, config = snakemake.input, snakemake.config
    settings = RunSettings.from_identity(snakemake.params.identity, config["protocol"])
    key = settings.key
    layout = ResultsLayout()
    assert layout.run_record(key) == Path(snakemake.output.run), "results layout disagrees"
    job_log = Path(snakemake.log[0])
    run = measure_run(
        settings,
        run_provenance(config, key.model, key.configuration.id, key.rep),
        RunInputs.verified(
            Path(inputs.prompts),
            Path(inputs.prompts_manifest),
            expected_prompt_count(config["prompts"]["limit"]),
            model_dir=Path(inputs.model),
            artefact_dir=Path(inputs.artefact) if "artefact" in inputs.keys() else None,
            check_path=Path(inputs.check) if "check" in inputs.keys() else None,
        ),
        layout,
        RunLogs(job_log=job_log, server_log=job_log.with_suffix(".server.log")),
        workflow_dir=Path(snakemake.scriptdir).parents[1],
        thresholds=ValidityThresholds.from_config(config["validity"]),
        calibration_idle_s=config["validity"]["calibration_idle_s"],
        calibrate_bandwidth=True,
    )
    log.info(
        "run done: %d requests in %.2f s, global energy %s J (%s)",
        run.n_requests,
        run.metrics.duration_s,
        run.metrics.global_.energy_j,
        run.metrics.global_.method,
    )
    # The run is recorded; the study's progress is only news, so it never fails the job.
    try:
        memory_mb = machine_memory_mb()
        plan = study_plan(
            config, memory_mb * 1_000_000 if memory_mb else None, gpu_here=gpu_present()
        )
        say(progress_line(plan))
    except Exception:  # noqa: BLE001
        log.exception("no progress line: the plan could not be made")
