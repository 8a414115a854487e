"""A real one-node SLURM cluster on localhost, for tests: munged, slurmctld and slurmd from Debian.

Everything the cluster owns lives in one folder (config, munge key and socket, controller state,
node spool, logs, the job-completion record), the daemons run in the foreground as children of the
test process and are stopped by their PID, and `stop()` first cancels every job it still knows, so
nothing outlives the test. The node is declared as the machine really is (`slurmd -C`), without
accounting (no slurmdbd): the job-completion plugin writes one line per finished job instead, which
is how a test learns the state, start and end of every job after SLURM has forgotten it.

Daemon settings that differ from SLURM's defaults and why:
- ProctrackType=proctrack/linuxproc: tracks a job's processes without cgroups (none in a container).
- TaskPlugin=task/affinity: pins every job step to the CPUs it was given, as sites do (with
  task/cgroup or task/affinity); without it a step would see every CPU whatever it asked for.
- SelectType=select/cons_tres + CR_Core_Memory: cores and memory are consumable, as on real sites,
  so `--exclusive`, `--mem` and `--cpus-per-task` are enforced by the scheduler.
- MinJobAge=300 (SLURM's default, written out because the squeue status recipe relies on it).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

PACKAGES = ("slurm-wlm", "munge")
DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scancel", "sinfo", "scontrol")
NODE = "localhost"
PARTITION = "ci"


class ClusterUnavailable(RuntimeError):
    """SLURM cannot be installed or started here; the message says why (a test skips with it)."""


@dataclass(frozen=True)
class JobRecord:
    """One finished job as the job-completion plugin wrote it (times in whole seconds)."""

    job_id: str
    name: str
    state: str
    start_s: int
    end_s: int
    node_list: str
    tres: str


def missing_programs() -> list[str]:
    found = {name: shutil.which(name) or _sbin(name) for name in (*DAEMONS, *CLIENTS)}
    return [name for name, path in found.items() if not path]


def _sbin(name: str) -> str | None:
    for folder in ("/usr/sbin", "/sbin"):
        if os.access(f"{folder}/{name}", os.X_OK):
            return f"{folder}/{name}"
    return None


def program(name: str) -> str:
    path = shutil.which(name) or _sbin(name)
    if path is None:
        raise ClusterUnavailable(f"{name} is not installed")
    return path


def ensure_installed() -> None:
    """Install Debian's slurm-wlm and munge where they are missing and we may (root + apt-get)."""
    if not missing_programs():
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise ClusterUnavailable(
            f"SLURM programs missing ({', '.join(missing_programs())}) and no root apt-get to "
            f"install {' '.join(PACKAGES)}"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES]
    result = subprocess.run(install, capture_output=True, text=True, env=env, timeout=600)
    if result.returncode != 0:  # a stale package list is the usual cause
        subprocess.run(["apt-get", "update", "-q"], capture_output=True, env=env, timeout=600)
        result = subprocess.run(install, capture_output=True, text=True, env=env, timeout=600)
    if result.returncode != 0 or missing_programs():
        raise ClusterUnavailable(
            f"apt-get install {' '.join(PACKAGES)} failed: {result.stderr.strip()[-800:]}"
        )


def node_hardware() -> str:
    """The node line's hardware fields as slurmd itself detects them (CPUs, sockets, memory)."""
    result = subprocess.run([program("slurmd"), "-C"], capture_output=True, text=True, timeout=60)
    first = result.stdout.splitlines()[0] if result.stdout else ""
    fields = dict(item.split("=", 1) for item in first.split() if "=" in item)
    wanted = ("CPUs", "Boards", "SocketsPerBoard", "CoresPerSocket", "ThreadsPerCore", "RealMemory")
    if result.returncode != 0 or not all(key in fields for key in wanted):
        raise ClusterUnavailable(f"slurmd -C did not describe the node: {result.stderr.strip()}")
    return " ".join(f"{key}={fields[key]}" for key in wanted)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LocalSlurm:
    """Start with `start()` (or `with LocalSlurm(folder) as cluster:`); `env` is what clients need."""

    def __init__(self, root: Path, *, min_job_age_s: int = 300, kill_wait_s: int = 30):
        self.root = root
        self.min_job_age_s = min_job_age_s
        self.kill_wait_s = kill_wait_s
        self.conf = root / "etc" / "slurm.conf"
        self.munge_socket = root / "munge" / "munge.socket"
        self.jobcomp = root / "jobcomp.txt"
        self.logs = root / "log"
        self._daemons: dict[str, subprocess.Popen] = {}
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}

    # -- life cycle -------------------------------------------------------------------------------

    def __enter__(self) -> LocalSlurm:
        self.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.stop()

    def start(self, timeout_s: float = 60) -> None:
        ensure_installed()
        try:
            self._write_files()
            self._spawn("munged", self._munged_command())
            self._wait_for(self.munge_socket.exists, "munged's socket", timeout_s)
            self._spawn("slurmctld", [program("slurmctld"), "-D", "-i", "-f", str(self.conf)])
            self._spawn("slurmd", self._slurmd_command())
            self._wait_for(lambda: self.node_state() == "idle", "the node to be idle", timeout_s)
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout_s: float = 60) -> None:
        """Cancel every job, wait for them to end, then stop slurmd, slurmctld and munged."""
        if "slurmctld" in self._daemons and self._daemons["slurmctld"].poll() is None:
            jobs = self.squeue("%i")
            if jobs:
                self.run(["scancel", *jobs], check=False)
                deadline = time.monotonic() + self.kill_wait_s + timeout_s
                while self.squeue("%i", states="PENDING,RUNNING,COMPLETING,SUSPENDED"):
                    if time.monotonic() > deadline:
                        break
                    time.sleep(1)
        for name in reversed(DAEMONS):
            process = self._daemons.pop(name, None)
            if process is None or process.poll() is not None:
                continue
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=timeout_s)

    # -- clients ----------------------------------------------------------------------------------

    def run(
        self, command: list[str], *, check: bool = True, **kwargs
    ) -> subprocess.CompletedProcess:
        result = subprocess.run(
            command, env=self.env, capture_output=True, text=True, timeout=120, **kwargs
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)}: {result.stderr.strip()}")
        return result

    def squeue(self, fields: str, *, states: str = "all") -> list[str]:
        result = self.run(["squeue", "-h", f"--states={states}", "-o", fields], check=False)
        return result.stdout.split() if "|" not in fields else result.stdout.splitlines()

    def node_state(self) -> str:
        result = self.run(["sinfo", "-h", "-N", "-n", NODE, "-o", "%T"], check=False)
        return result.stdout.strip()

    def node_cpus(self) -> int:
        output = self.run(["scontrol", "show", "node", NODE]).stdout
        return int(re.search(r"CPUTot=(\d+)", output).group(1))

    def config_value(self, key: str) -> str:
        output = self.run(["scontrol", "show", "config"]).stdout
        match = re.search(rf"^{key}\s*=\s*(.*)$", output, re.M)
        return match.group(1).strip() if match else ""

    def finished_jobs(self) -> dict[str, JobRecord]:
        """Every job that ended, by job id (from the job-completion file; survives MinJobAge)."""
        records = {}
        if not self.jobcomp.exists():
            return records
        for line in self.jobcomp.read_text().splitlines():
            fields = dict(re.findall(r"(\w+)=(\S*)", line))
            records[fields["JobId"]] = JobRecord(
                job_id=fields["JobId"],
                name=fields.get("Name", ""),
                state=fields["JobState"],
                start_s=_epoch(fields["StartTime"]),
                end_s=_epoch(fields["EndTime"]),
                node_list=fields.get("NodeList", ""),
                tres=fields.get("Tres", ""),
            )
        return records

    def daemon_logs(self, tail_chars: int = 3000) -> str:
        texts = []
        for path in sorted(self.logs.glob("*.log")):
            texts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-tail_chars:]}")
        return "\n".join(texts)

    # -- internals --------------------------------------------------------------------------------

    def _write_files(self) -> None:
        for folder in ("etc", "munge", "state", "spool", "log"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        # munged refuses a key or socket folder that others may write to
        os.chmod(self.root / "munge", 0o700)
        key = self.root / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        os.chmod(key, 0o400)
        self.conf.write_text(
            "\n".join(
                [
                    "ClusterName=ci",
                    f"SlurmctldHost={NODE}(127.0.0.1)",
                    f"SlurmctldPort={free_port()}",
                    f"SlurmdPort={free_port()}",
                    "SlurmUser=root",
                    "SlurmdUser=root",
                    "AuthType=auth/munge",
                    "CredType=cred/munge",
                    f"AuthInfo=socket={self.munge_socket}",
                    f"StateSaveLocation={self.root / 'state'}",
                    f"SlurmdSpoolDir={self.root / 'spool'}",
                    f"SlurmctldPidFile={self.root / 'slurmctld.pid'}",
                    f"SlurmdPidFile={self.root / 'slurmd.pid'}",
                    f"SlurmctldLogFile={self.logs / 'slurmctld.log'}",
                    f"SlurmdLogFile={self.logs / 'slurmd.log'}",
                    "ProctrackType=proctrack/linuxproc",
                    "TaskPlugin=task/affinity",
                    "SelectType=select/cons_tres",
                    "SelectTypeParameters=CR_Core_Memory",
                    "SchedulerType=sched/backfill",
                    "MpiDefault=none",
                    "SwitchType=switch/none",
                    "ReturnToService=2",
                    "AccountingStorageType=accounting_storage/none",
                    "JobAcctGatherType=jobacct_gather/none",
                    "JobCompType=jobcomp/filetxt",
                    f"JobCompLoc={self.jobcomp}",
                    f"MinJobAge={self.min_job_age_s}",
                    f"KillWait={self.kill_wait_s}",
                    f"NodeName={NODE} NodeAddr=127.0.0.1 {node_hardware()} State=UNKNOWN",
                    f"PartitionName={PARTITION} Nodes={NODE} Default=YES MaxTime=INFINITE State=UP",
                    "",
                ]
            )
        )

    def _munged_command(self) -> list[str]:
        munge = self.root / "munge"
        return [
            program("munged"), "--foreground", "--force",
            f"--socket={self.munge_socket}", f"--key-file={munge / 'munge.key'}",
            f"--pid-file={munge / 'munged.pid'}", f"--seed-file={munge / 'munged.seed'}",
            f"--log-file={self.logs / 'munged.log'}",
        ]  # fmt: skip

    def _slurmd_command(self) -> list[str]:
        """slurmd in a mount namespace of its own where /etc/slurm is this cluster's config folder.

        The jobs it starts inherit that namespace, and they need it: the plugin runs each rule in
        an `srun` step and strips SLURM_* variables (SLURM_CONF too) from srun's environment, so
        srun only finds the config at its default path. The machine's /etc/slurm stays untouched.
        """
        if shutil.which("unshare") is None or not Path("/etc/slurm").is_dir():
            raise ClusterUnavailable("needs unshare(1) and /etc/slurm to give jobs the config")
        slurmd = shlex.join([program("slurmd"), "-D", "-N", NODE, "-f", "/etc/slurm/slurm.conf"])
        mount = shlex.join(["mount", "--bind", str(self.conf.parent), "/etc/slurm"])
        return [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            f"{mount} && exec {slurmd}",
        ]

    def _spawn(self, name: str, command: list[str]) -> None:
        output = open(self.logs / f"{name}.out", "w")  # noqa: SIM115 (closed with the process)
        self._daemons[name] = subprocess.Popen(
            command, env=self.env, stdout=output, stderr=subprocess.STDOUT, cwd=self.root
        )
        output.close()

    def _wait_for(self, condition, what: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            for name, process in self._daemons.items():
                if process.poll() is not None:
                    raise ClusterUnavailable(
                        f"{name} exited with {process.returncode} while waiting for {what}:\n"
                        + (self.logs / f"{name}.out").read_text(errors="replace")[-2000:]
                        + self.daemon_logs()
                    )
            if time.monotonic() > deadline:
                raise ClusterUnavailable(
                    f"timed out after {timeout_s:.0f} s waiting for {what}\n{self.daemon_logs()}"
                )
            time.sleep(0.5)


def _epoch(stamp: str) -> int:
    """jobcomp/filetxt writes local time as 2026-11-26T15:08:01 (or 'Unknown' when never started)."""
    if not stamp or stamp == "Unknown":
        return 0
    return int(time.mktime(time.strptime(stamp, "%Y-%m-%dT%H:%M:%S")))
