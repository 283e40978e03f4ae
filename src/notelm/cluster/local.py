"""A real one-node Slurm on this machine (Debian's `slurm-wlm` and `munge`): munged, slurmctld and slurmd
under a directory of their own, on free ports, as the user who starts them. The grid's tests and
`benchmarks/cluster.py` submit to it; you can try `notelm grid --slurm` on it too:

    python -m notelm.cluster.local start /tmp/slurm    # prints the `export SLURM_CONF=...` to use
    python -m notelm.cluster.local stop /tmp/slurm

Only for trying and testing: one partition, every CPU of this machine, no accounting, no cgroups.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

PACKAGES = ("slurm-wlm", "munge")
DAEMONS = ("slurmctld", "slurmd", "munged")


def missing() -> list[str]:
    """The daemons and clients this needs that are not on PATH (sbin included)."""
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    return [cmd for cmd in (*DAEMONS, "sbatch", "squeue") if not shutil.which(cmd, path=path)]


def install() -> str | None:
    """Install the packages with apt-get when they are missing and this process may; None when Slurm is
    here afterwards, else why not (the reason a test skips with)."""
    if not missing():
        return None
    if os.environ.get("NOTELM_NO_APT"):
        return f"{', '.join(missing())} missing and NOTELM_NO_APT is set"
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or not shutil.which("apt-get"):
        return f"{', '.join(missing())} missing; install them with `apt-get install {' '.join(PACKAGES)}` (as root)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", *PACKAGES]):
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            return f"`{' '.join(cmd)}` failed: {(proc.stderr or proc.stdout).strip()[-300:]}"
    return None if not missing() else f"apt-get ran but {', '.join(missing())} is still missing"


def free_port() -> int:
    """A TCP port of 127.0.0.1 free a moment ago (the daemons bind it next)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def config(root: Path, host: str, cpus: int, memory_mb: int, ports: tuple[int, int]) -> str:
    """slurm.conf of a one-node cluster whose files all live under `root`."""
    user = _user()
    return "\n".join([
        "ClusterName=notelm-local",
        f"SlurmctldHost={host}(127.0.0.1)",
        f"SlurmctldPort={ports[0]}", f"SlurmdPort={ports[1]}",
        f"SlurmUser={user}", f"SlurmdUser={user}",
        "AuthType=auth/munge", "CredType=cred/munge", f"AuthInfo=socket={root / 'munge.socket'}",
        f"StateSaveLocation={root / 'state'}", f"SlurmdSpoolDir={root / 'spool'}",
        f"SlurmctldPidFile={root / 'slurmctld.pid'}", f"SlurmdPidFile={root / 'slurmd.pid'}",
        f"SlurmctldLogFile={root / 'slurmctld.log'}", f"SlurmdLogFile={root / 'slurmd.log'}",
        "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none", "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none", "MpiDefault=none", "ReturnToService=2",
        "SchedulerType=sched/backfill", "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core",
        "MinJobAge=3600",  # keep finished jobs visible to scontrol for an hour
        f"NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN",
        f"PartitionName=local Nodes={host} Default=YES MaxTime=INFINITE State=UP",
    ]) + "\n"


def _user() -> str:
    """This process's user name: the daemons run as whoever starts them."""
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


def _sbin(cmd: str) -> str:
    """The path of a daemon: /usr/sbin is often not on a user's PATH."""
    return shutil.which(cmd, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") or cmd


def start(root: Path, timeout: float = 30.0) -> dict[str, str]:
    """Start munged, slurmctld and slurmd under `root`; wait until the node takes jobs; return the environment
    clients need (`SLURM_CONF`). A RuntimeError with the daemons' last log lines when it does not come up."""
    import psutil

    root = Path(root).resolve()
    for sub in ("state", "spool"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    key = root / "munge.key"
    if not key.exists():
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
    host = socket.gethostname().split(".")[0]
    memory_mb = int(psutil.virtual_memory().total / 2**20 * 0.9)
    conf = root / "slurm.conf"
    conf.write_text(config(root, host, os.cpu_count() or 1, memory_mb, (free_port(), free_port())))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    daemons = [[_sbin("munged"), "--force", f"--key-file={key}", f"--socket={root / 'munge.socket'}",
                f"--log-file={root / 'munged.log'}", f"--pid-file={root / 'munged.pid'}",
                f"--seed-file={root / 'munged.seed'}"],
               [_sbin("slurmctld"), "-f", str(conf)], [_sbin("slurmd"), "-f", str(conf)]]
    for cmd in daemons:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            stop(root)
            raise RuntimeError(f"`{' '.join(cmd)}` failed: {proc.stderr.strip()}\n{_logs(root)}")
    deadline = time.time() + timeout
    while time.time() < deadline:
        state = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, env=env).stdout.strip()
        if state in ("idle", "mix", "alloc"):
            return {"SLURM_CONF": str(conf)}
        time.sleep(0.5)
    stop(root)
    raise RuntimeError(f"the node did not come up in {timeout:.0f} s\n{_logs(root)}")


def _logs(root: Path) -> str:
    """The last lines of each daemon's log, for an error message."""
    return "\n".join(f"{name}: {' | '.join(path.read_text(errors='replace').splitlines()[-5:])}"
                     for name in ("slurmctld.log", "slurmd.log", "munged.log") if (path := root / name).is_file())


def stop(root: Path) -> None:
    """Stop the daemons started under `root` (each by its pid file), waiting up to 10 s for them to exit."""
    root = Path(root).resolve()
    pids = []
    for name in ("slurmd", "slurmctld", "munged"):
        pid_file = root / f"{name}.pid"
        try:
            pid = int(pid_file.read_text().split()[0])
            os.kill(pid, signal.SIGTERM)
            pids.append(pid)
        except (OSError, ValueError, IndexError):
            continue
    deadline = time.time() + 10
    while pids and time.time() < deadline:
        pids = [p for p in pids if _alive(p)]
        time.sleep(0.2)


def _alive(pid: int) -> bool:
    """Whether process `pid` still exists."""
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    """`python -m notelm.cluster.local start|stop DIR` (the module docstring); the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] not in ("start", "stop"):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    if argv[0] == "stop":
        stop(Path(argv[1]))
        return 0
    reason = install()
    if reason:
        print(reason, file=sys.stderr)
        return 1
    env = start(Path(argv[1]))
    print(f"export SLURM_CONF={env['SLURM_CONF']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
