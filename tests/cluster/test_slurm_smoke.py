"""The smoke study through profiles/slurm on a real one-node SLURM cluster, as the README says.

The README's two smoke-study commands run in a copy of the workflow, against the cluster of
conftest.py (no accounting: job states come from squeue, job records from the job-completion file).
While the second command runs, one measurement is cancelled with `scancel` once its server is up;
the second command is then run again, as the README says to do after a failure. The tests check what
SLURM and the workflow recorded. The copy's smoke study keeps one of its two models: every SLURM
path (submission, order, cancellation, redo) is the same for each model, and CI needs the time.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.cluster.localslurm import LocalSlurm
from tests.helpers import REPO, offline_environment

pytestmark = pytest.mark.slurm

CLUSTER_MODEL = "tiny-gpt2"  # the one model of config/smoke.yaml the cluster study keeps
# ... in two configurations: the reference and one exported engine. Every cluster path (submission
# and resources per rule, cancellation, redo) is per rule, not per engine, and one export rule and
# one check rule serve every engine; each further engine cost CI about a minute and a half.
CLUSTER_ENGINES = ("torch", "onnx")
SMOKE_RUNS = 1 * len(CLUSTER_ENGINES) * 2  # models x configurations x repetitions
CANCELLED_START = 3  # the third measurement to start is the one cancelled
COMMAND_TIMEOUT_S = 900
# Plugin log line for every submission; the log path names the rule and the job's wildcards.
SUBMITTED = re.compile(
    r"Job \d+ has been submitted with SLURM jobid (?P<id>\d+) "
    r"\(log: \S*/(?:rule|group)_(?P<rule>\w+)/(?:(?P<wildcards>[^/\s]+)/)?\d+\.log\)"
)
MODEL_JOBS = {"measure", "check_engine"}  # jobs that must never share the machine
SERVER = (
    "serving_energy.serving.server"  # in the command line of the model server a measurement starts
)


def readme_smoke_commands() -> list[str]:
    """The commands of the README's smoke-study block in "Scale-out on a cluster"."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Scale-out on a cluster") :]
    section = section[: section.index("\n## ", 1)]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    smoke = [block for block in blocks if "config/smoke.yaml" in block]
    assert len(smoke) == 1, "the README's cluster section has one smoke-study block"
    return [line.strip() for line in smoke[0].splitlines() if line.startswith(".venv/bin/")]


@dataclass
class Invocation:
    command: str
    returncode: int
    output: str
    duration_s: float
    jobs: dict[str, tuple[str, str]]  # SLURM job id -> (rule, wildcards joined by "_")

    def ids(self, rule: str) -> list[str]:
        return [job_id for job_id, (name, _) in self.jobs.items() if name == rule]


@dataclass
class Cancellation:
    job_id: str = ""
    wildcards: str = ""
    at_job_end: list[str] = field(default_factory=list)  # its processes when SLURM let go of it
    after_kill_wait: list[str] = field(default_factory=list)  # ... and KillWait seconds later
    note: str = ""


@dataclass
class ClusterStudy:
    workdir: Path
    cluster: LocalSlurm
    prepare: Invocation
    measure: Invocation
    redo: Invocation
    cancellation: Cancellation

    @property
    def invocations(self) -> list[Invocation]:
        return [self.prepare, self.measure, self.redo]

    def rule_of(self, job_id: str) -> str:
        for invocation in self.invocations:
            if job_id in invocation.jobs:
                return invocation.jobs[job_id][0]
        raise KeyError(job_id)


def workflow_copy(root: Path) -> Path:
    """The workflow's files in a fresh folder, with .venv pointing at the venv running the tests."""
    workdir = root / "study"
    workdir.mkdir()
    for name in ("Snakefile", "workflow", "config", "envs", "profiles"):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, workdir / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, workdir / name)
    (workdir / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    return workdir


def split_run_wildcards(wildcards: str) -> tuple[str, str, str]:
    """(model, configuration id, rep) of a measure job's wildcards joined by "_" (engine ids may
    hold "_" too: torch_compile)."""
    from serving_energy.study.vocabulary import CONFIGURATION_IDS

    for configuration in CONFIGURATION_IDS:
        model, found, rep = wildcards.partition(f"_{configuration.replace('-', '_')}_")
        if found and rep.isdigit():
            return model, configuration, rep
    raise ValueError(f"no configuration in the wildcards {wildcards!r}")


def keep_one_model(configfile: Path, model: str) -> None:
    """The smoke study of ``configfile`` with ``model`` as its only model, in the cluster's
    configurations."""
    config = yaml.safe_load(configfile.read_text())
    assert model in config["models"], f"{model} is no longer a model of {configfile.name}"
    config["models"] = {model: config["models"][model]}
    config["configurations"] = [
        c for c in config["configurations"] if c["engine"] in CLUSTER_ENGINES
    ]
    assert len(config["configurations"]) == len(CLUSTER_ENGINES), config["configurations"]
    configfile.write_text(yaml.safe_dump(config, sort_keys=False))


def start(command: str, workdir: Path, cluster: LocalSlurm) -> subprocess.Popen:
    env = {**offline_environment(), "SLURM_CONF": cluster.env["SLURM_CONF"]}
    return subprocess.Popen(
        shlex.split(command), cwd=workdir, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip


def run(command: str, workdir: Path, cluster: LocalSlurm, while_running=None) -> Invocation:
    started_s = time.monotonic()
    process = start(command, workdir, cluster)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)
    reader.start()
    try:
        if while_running is not None:
            while_running(process)
        process.wait(timeout=COMMAND_TIMEOUT_S)
    finally:  # a timeout or an interrupted test must not leave Snakemake running
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    reader.join(timeout=60)
    output = "".join(lines)
    jobs = {
        match["id"]: (match["rule"], match["wildcards"] or "")
        for match in SUBMITTED.finditer(output)
    }
    return Invocation(command, process.returncode, output, time.monotonic() - started_s, jobs)


def cancel_one_measurement(cluster: LocalSlurm, cancellation: Cancellation):
    """scancel the CANCELLED_START-th measurement to start, once its model server has started."""

    def watch(process: subprocess.Popen) -> None:
        started: list[str] = []
        deadline = time.monotonic() + COMMAND_TIMEOUT_S
        while process.poll() is None and time.monotonic() < deadline:
            for line in cluster.squeue("%i|%T|%k"):
                job_id, state, comment = line.split("|", 2)
                if state == "RUNNING" and comment.startswith("rule_measure_wildcards_"):
                    if job_id not in started:
                        started.append(job_id)
            if len(started) >= CANCELLED_START:
                break
            time.sleep(0.5)
        else:
            cancellation.note = f"only {len(started)} measurements started"
            return
        job_id = started[CANCELLED_START - 1]
        comment = next(
            line.split("|", 2)[2] for line in cluster.squeue("%i|%T|%k") if line.startswith(job_id)
        )
        wildcards = comment.removeprefix("rule_measure_wildcards_")
        # cancel while its model server runs: the moment a killed job can leave a server behind
        deadline = time.monotonic() + 180
        while not any(SERVER in command for command in processes_of_job(job_id)):
            if time.monotonic() > deadline:
                cancellation.note = f"no model server of job {job_id} seen within 180 s"
                break
            time.sleep(0.2)
        cluster.run(["scancel", job_id])
        cancellation.job_id, cancellation.wildcards = job_id, wildcards
        while cluster.squeue("%i", states="RUNNING,COMPLETING").count(job_id):
            time.sleep(0.5)
        cancellation.at_job_end = processes_of_job(job_id)
        time.sleep(cluster.kill_wait_s)  # the study goes on meanwhile
        cancellation.after_kill_wait = processes_of_job(job_id)

    return watch


def processes_of_job(job_id: str) -> list[str]:
    """Processes still alive that SLURM started for the job (SLURM_JOB_ID in their environment)."""
    survivors = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
            if f"SLURM_JOB_ID={job_id}".encode() in environ:
                survivors.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return survivors


@pytest.fixture(scope="module")
def study(slurm_cluster, tmp_path_factory) -> ClusterStudy:
    prepare_command, measure_command = readme_smoke_commands()
    workdir = workflow_copy(tmp_path_factory.mktemp("slurm-smoke"))
    keep_one_model(workdir / "config/smoke.yaml", CLUSTER_MODEL)
    prepare = run(prepare_command, workdir, slurm_cluster)
    assert prepare.returncode == 0, prepare.output[-6000:] + slurm_cluster.daemon_logs()
    cancellation = Cancellation()
    measure = run(
        measure_command,
        workdir,
        slurm_cluster,
        while_running=cancel_one_measurement(slurm_cluster, cancellation),
    )
    assert cancellation.job_id, cancellation.note + measure.output[-6000:]
    redo = run(measure_command, workdir, slurm_cluster)
    assert redo.returncode == 0, redo.output[-6000:] + slurm_cluster.daemon_logs()
    steps = {"prepare": prepare, "measure (one cancelled)": measure, "redo": redo}
    print("SLURM smoke: " + ", ".join(f"{name} {i.duration_s:.0f} s" for name, i in steps.items()))
    return ClusterStudy(workdir, slurm_cluster, prepare, measure, redo, cancellation)


def run_folders(workdir: Path) -> list[Path]:
    return sorted(path.parent for path in workdir.glob("results/runs/*/*/rep*/run.json"))


def test_the_cluster_has_no_accounting_and_keeps_finished_jobs_long_enough(study):
    """The recipe for clusters without slurmdbd: squeue states, MinJobAge >= 180 s."""
    sacct = study.cluster.run(["sacct", "-X", "-n"], check=False)
    assert sacct.returncode != 0 or not sacct.stdout.strip()
    assert int(study.cluster.config_value("MinJobAge").split()[0]) >= 180
    for invocation in study.invocations:
        assert "Falling back to 'sacct'" not in invocation.output


def test_every_slurm_job_completed(study):
    records = study.cluster.finished_jobs()
    submitted = {job_id for invocation in study.invocations for job_id in invocation.jobs}
    assert set(records) == submitted  # SLURM ran nothing Snakemake did not report
    for invocation in study.invocations:
        assert invocation.jobs, invocation.output[-3000:]
        for job_id in invocation.jobs:
            expected = "CANCELLED" if job_id == study.cancellation.job_id else "COMPLETED"
            assert records[job_id].state == expected, (job_id, invocation.jobs[job_id])
    prepared = {rule for rule, _ in study.prepare.jobs.values()}
    assert "measure" not in prepared and {"export", "check_engine"} <= prepared
    assert len(study.measure.ids("measure")) == SMOKE_RUNS


def test_no_measurement_or_check_overlapped_another_job(study):
    records = study.cluster.finished_jobs()
    jobs = [records[job_id] for invocation in study.invocations for job_id in invocation.jobs]
    for job in jobs:
        if study.rule_of(job.job_id) not in MODEL_JOBS:
            continue
        for other in jobs:
            if other.job_id != job.job_id:
                overlap = job.start_s < other.end_s and other.start_s < job.end_s
                assert not overlap, (job, study.rule_of(other.job_id), other)


def test_every_run_names_its_slurm_job(study):
    folders = run_folders(study.workdir)
    assert len(folders) == SMOKE_RUNS
    measured = {
        wildcards: job_id
        for invocation in study.invocations
        for job_id, (rule, wildcards) in invocation.jobs.items()
        if rule == "measure"
    }  # the last job of each run: the redo replaces the cancelled one
    for folder in folders:
        run = json.loads((folder / "run.json").read_text())
        model, configuration, rep = folder.relative_to(study.workdir / "results/runs").parts
        wildcards = f"{model}_{configuration.replace('-', '_')}_{rep.removeprefix('rep')}"
        assert run["status"] == "ok"
        assert run["machine"]["slurm_job_id"] == measured[wildcards], folder


def test_measurements_ran_on_every_cpu_of_their_node(study):
    """sbatch asks one CPU beside --exclusive; the srun step in the job must still get all of them
    (task/affinity pins it to what it asked for), and the engine uses what the job may use."""
    for folder in run_folders(study.workdir):
        run = json.loads((folder / "run.json").read_text())
        assert run["threads"] == study.cluster.node_cpus(), folder
        assert run["threads_source"] == "all cores available to the job"


def test_cancelled_measurement_is_kept_as_failed(study):
    model, configuration, rep = split_run_wildcards(study.cancellation.wildcards)
    failed = study.workdir / f"results/failed/{model}/{configuration}/rep{rep}"
    records = sorted(failed.glob("*/failure.json"))
    assert records, f"nothing kept under {failed} for the scancelled job (needs SIGTERM handling)"
    failure = json.loads(records[-1].read_text())
    assert failure["status"] == "failed"
    assert re.search(r"SIGTERM|signal 15|terminated", failure["failure"], re.I), failure["failure"]
    assert failure["machine"]["slurm_job_id"] == study.cancellation.job_id


def test_cancelled_measurement_took_its_server_with_it(study):
    """Once SLURM has freed the node, nothing of the job may still run on it: above all no model
    server (it would load the node that the next measurement gets). Snakemake's own processes in
    the job, reparented when the job's shell dies, may take a moment; KillWait is their limit."""
    assert study.cancellation.note == ""  # it was cancelled while its server ran
    servers = [command for command in study.cancellation.at_job_end if SERVER in command]
    assert servers == []
    assert study.cancellation.after_kill_wait == []


def test_cancelled_measurement_is_redone_alone(study):
    assert study.measure.returncode != 0  # one job failed; keep-going ran the others
    redone = [study.redo.jobs[job_id][1] for job_id in study.redo.ids("measure")]
    assert redone == [study.cancellation.wildcards]
    assert not {"export", "check_engine"} & {rule for rule, _ in study.redo.jobs.values()}


def test_measurements_start_in_the_seeded_order(study):
    """On one node, measurements start exactly in the study's seeded random order (priority)."""
    records = study.cluster.finished_jobs()
    priorities = {}
    for folder in run_folders(study.workdir):
        run = json.loads((folder / "run.json").read_text())
        model, configuration, rep = folder.relative_to(study.workdir / "results/runs").parts
        key = f"{model}_{configuration.replace('-', '_')}_{rep.removeprefix('rep')}"
        priorities[key] = run["run_order"]["priority"]
    started = sorted(
        study.measure.ids("measure"), key=lambda job_id: (records[job_id].start_s, int(job_id))
    )
    order = [priorities[study.measure.jobs[job_id][1]] for job_id in started]
    assert order == sorted(order, reverse=True), order


def test_analysis_counts_every_run_and_the_cancelled_attempt(study):
    import polars as pl

    runs = pl.read_csv(study.workdir / "results/metrics/runs.csv")
    assert runs.height == SMOKE_RUNS
    failed = pl.read_csv(study.workdir / "results/metrics/failed_runs.csv")
    assert failed.height == 1
    assert (study.workdir / "results/replication-package.zip").is_file()
