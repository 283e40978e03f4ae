"""The grid on a real Slurm: Debian's slurm-wlm and munge, started as a one-node cluster on this machine
(notelm.cluster.local), a bare git remote and a local-directory DVC remote in tmp dirs, the tiny pipeline.

`notelm grid --slurm` submits three points (two good, one made to fail in its train stage); the test waits
for them, then checks `notelm grid status` (done, done, failed with its log), `notelm grid collect` and
`dvc exp show` in the submitting clone (both experiments with their params and metrics), that the shared
stages ran once (in the shared job, never in a point), and that submitting again skips what was pushed.
Where Slurm cannot be installed the test skips with the reason; with NOTELM_REQUIRE_SLURM set (.ci/run)
it fails instead.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from notelm.cluster import local
from tests.test_pipeline import REPO, make_repo, sh

pytestmark = pytest.mark.slow

SHARED = ["synthesize", "prepare", "audit", "base_model", "generate_pretrained"]
GRID = {"steps-2": {"set": {"train.max_steps": 2}},
        "steps-3": {"set": {"train.max_steps": 3}},
        "broken": {"set": {"train.max_steps": 2, "train.precision": "fp16"}}}  # train refuses fp16 on a CPU


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """A running one-node Slurm; its SLURM_CONF."""
    reason = local.install()
    if reason:
        if os.environ.get("NOTELM_REQUIRE_SLURM"):
            pytest.fail(f"NOTELM_REQUIRE_SLURM is set and Slurm is not usable: {reason}")
        pytest.skip(reason)
    root = Path(tmp_path_factory.mktemp("slurm"))
    env = local.start(root)
    yield env["SLURM_CONF"]
    local.stop(root)


def notelm(*args: str, cwd: Path) -> str:
    return sh(sys.executable, "-m", "notelm.cli", *args, cwd=cwd)


def wait(repo: Path, timeout: float = 900) -> str:
    """`notelm grid status` once Slurm holds none of this user's jobs (bounded). The queue is polled with
    squeue alone: a `notelm grid status` a second would take CPU from the jobs on this 2-core machine."""
    deadline = time.time() + timeout
    while sh("squeue", "--me", "-h", cwd=repo).strip():
        assert time.time() < deadline, notelm("grid", "status", cwd=repo)
        time.sleep(2)
    return notelm("grid", "status", cwd=repo)


def rows(status: str) -> dict[str, list[str]]:
    """The status table's cells by point name."""
    out = {}
    for line in status.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and cells[0] not in ("point", "---"):
            out[cells[0]] = cells
    return out


def test_a_grid_runs_as_slurm_array_tasks_and_comes_back_through_dvc(slurm, tmp_path, tiny_model_factory,
                                                                        monkeypatch):
    monkeypatch.setenv("SLURM_CONF", slurm)
    origin, storage = tmp_path / "origin.git", tmp_path / "dvc-storage"
    sh("git", "init", "-q", "--bare", str(origin), cwd=tmp_path)
    (tmp_path / "repo").mkdir()
    repo = make_repo(tmp_path / "repo", tiny_model_factory("llama"))
    (repo / "grid.yaml").write_text(yaml.safe_dump(GRID))
    sh("dvc", "remote", "add", "-d", "team", str(storage), cwd=repo)
    sh("git", "add", ".dvc/config", "grid.yaml", cwd=repo)
    sh("git", "commit", "-qm", "remote and grid", cwd=repo)
    sh("git", "remote", "add", "origin", str(origin), cwd=repo)
    sh("git", "push", "-q", "origin", "HEAD:refs/heads/main", cwd=repo)

    started = time.time()
    submitted = notelm("grid", "--slurm", "--grid", "grid.yaml", "--cpus", "1", cwd=repo)  # 2 tasks at once here
    assert f"runs {' '.join(SHARED)} once" in submitted, submitted
    assert all(f"{name}: job " in submitted for name in GRID), submitted
    status = wait(repo)
    took = time.time() - started
    states = rows(status)
    assert states["steps-2"][1] == states["steps-3"][1] == "done", status
    assert states["shared"][1] == "done", status
    broken = states["broken"]
    assert broken[1] == "failed" and broken[4].startswith("exit code "), status
    log = Path(broken[3])
    assert log.is_file() and "fp16 needs a CUDA GPU" in log.read_text(), log  # the log names the bad param
    assert status.splitlines()[0].endswith(": 2 done, 1 failed"), status

    # the shared stages ran in the shared job, and no point ran them again
    shared_log = Path(states["shared"][3]).read_text()
    for stage in SHARED:
        assert f"Running stage '{stage}'" in shared_log, (stage, shared_log[-2000:])
    for name in ("steps-2", "steps-3"):
        point_log = Path(states[name][3]).read_text()
        assert "Running stage 'train'" in point_log, point_log[-2000:]
        assert not [s for s in SHARED if f"Running stage '{s}'" in point_log], point_log[-3000:]

    collected = notelm("grid", "collect", cwd=repo)
    assert "pulled 2: steps-2 steps-3" in collected and "not on origin (yet): broken" in collected, collected
    shown = json.loads(sh("dvc", "exp", "show", "--json", cwd=repo))
    experiments = {e["name"]: e for baseline in shown for e in (baseline.get("experiments") or [])
                   for e in [e["revs"][0]] if e.get("name")}
    assert set(experiments) == {"steps-2", "steps-3"}, list(experiments)
    for name, steps in (("steps-2", 2), ("steps-3", 3)):
        data = experiments[name]["data"]
        assert data["params"]["params.yaml"]["data"]["train"]["max_steps"] == steps
        rouge = data["metrics"]["metrics/eval.json"]["data"]["finetuned"]["rougeL"]
        assert 0.0 <= rouge <= 1.0
    compared = notelm("compare", cwd=repo)  # lists the runs behind each row
    assert "steps-2" in compared and "steps-3" in compared, compared

    again = notelm("grid", "--slurm", "--grid", "grid.yaml", "--cpus", "1", "--dry-run", cwd=repo)
    assert "steps-2: skipped, already pushed" in again and "steps-3: skipped, already pushed" in again, again
    assert "broken: job (dry run)" in again, again
    if os.environ.get("NOTELM_GRID_OUTPUT"):  # benchmarks/cluster.py: this run's output for docs/cluster.md
        save_output(Path(os.environ["NOTELM_GRID_OUTPUT"]), repo, states, took, submitted, status)


SHOW = ["dvc", "exp", "show", "--md", "--drop", ".*", "--keep",
        r"Experiment|^train\.max_steps$|^finetuned\.(rougeL|bits_per_byte)$"]


def save_output(path: Path, repo: Path, states: dict[str, list[str]], took: float, submitted: str, status: str) -> None:
    """What the grid printed (paths under the test's tmp dir shortened to <repo>) and each job's run time."""
    jobs = []
    for name, cells in states.items():
        fields = dict(f.split("=", 1) for f in sh("scontrol", "-o", "show", "job", cells[2], cwd=repo).split()
                      if "=" in f)
        start, end = (dt.datetime.fromisoformat(fields[k]) for k in ("StartTime", "EndTime"))
        jobs.append([name, cells[2], cells[1], f"{(end - start).total_seconds():.0f}"])
    text = {"submitted": submitted, "status": status, "exp_show": sh(*SHOW, cwd=repo)}
    path.write_text(json.dumps({"seconds": round(took), "jobs": jobs, "show": shlex.join(SHOW),
                                **{k: v.replace(str(repo), "<repo>") for k, v in text.items()}}, indent=1))


def test_the_fsdp_script_starts_one_launcher_per_node_with_slurm_s_rendezvous(slurm, tmp_path, monkeypatch):
    """configs/slurm/train-fsdp.sbatch on the one-node cluster, its launcher replaced by `echo`: the command each
    node would run, parsed by accelerate's own `launch` parser."""
    from accelerate.commands.launch import launch_command_parser

    monkeypatch.setenv("SLURM_CONF", slurm)
    out = tmp_path / "fsdp.out"
    env = {**os.environ, "NOTELM_LAUNCH": "echo accelerate launch", "GPUS_PER_NODE": "4"}
    proc = subprocess.run(["sbatch", "--wait", "--nodes=1", f"--output={out}", f"--chdir={REPO}",
                           str(REPO / "configs/slurm/train-fsdp.sbatch")], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr + (out.read_text() if out.exists() else "")
    command = shlex.split(out.read_text().strip().splitlines()[-1])
    assert command[:2] == ["accelerate", "launch"], command
    args = launch_command_parser().parse_args(command[2:])
    assert (args.num_machines, args.num_processes, args.machine_rank) == (1, 4, 0)
    assert args.main_process_ip == socket.gethostname().split(".")[0] and args.main_process_port == 29500
    assert args.rdzv_backend == "c10d" and args.config_file == "configs/accelerate/fsdp.yaml"
    assert args.module and args.training_script == "notelm.stages.train"
    assert (REPO / args.config_file).is_file()


SKYPILOT = "skypilot==0.14.1"


def install_skypilot() -> tuple[Path, str | None]:
    """(the python of a venv holding SkyPilot, or why it could not be made). The venv is .cache/skypilot, made
    once with uv: it resolves SkyPilot's many dependencies in seconds, and they stay out of the project's
    environment, whose versions they would move."""
    venv = REPO / ".cache/skypilot"
    python, done = venv / "bin/python", venv / f".{SKYPILOT}"
    if done.is_file() and python.exists():
        return python, None
    steps = [[sys.executable, "-m", "venv", "--clear", str(venv)],
             [str(venv / "bin/pip"), "install", "-q", "uv==0.13.10"],
             [str(venv / "bin/uv"), "pip", "install", "-q", "--python", str(python), SKYPILOT]]
    for step in steps:
        proc = subprocess.run(step, capture_output=True, text=True)
        if proc.returncode != 0:
            return python, f"`{' '.join(step)}` failed: {(proc.stderr or proc.stdout).strip()[-300:]}"
    done.touch()
    return python, None


@pytest.fixture(scope="module", autouse=True)
def skypilot() -> Iterator[Future]:
    """SkyPilot's venv, installed in a thread from the module's start: mostly downloads, it overlaps the grid's
    wait instead of adding to the suite's time."""
    with ThreadPoolExecutor(1) as pool:
        yield pool.submit(install_skypilot)


def test_the_skypilot_task_loads_in_skypilot_and_runs_the_grid_s_round_trip(skypilot):
    check = """
import sys, yaml, sky
def config():  # a fresh copy each time: from_yaml_config writes the overrides into the mapping it is given
    return yaml.safe_load(open(sys.argv[1]))
task = sky.Task.from_yaml_config(config(), env_overrides=[("ORIGIN", "/srv/o.git"), ("COMMIT", "c0ffee"),
                                                        ("POINT", "p1"), ("SETS", "-S train.epochs=2")])
print(sorted(str(r.accelerators) for r in task.resources))
print(task.envs["POINT"], task.envs["SETS"])
try:
    sky.Task.from_yaml_config({**config(), "resources": {"acelerators": "L4:1"}}, env_overrides=[("ORIGIN", "o"),
                              ("COMMIT", "c"), ("POINT", "p")])
except Exception as exc:
    print("refused:", type(exc).__name__)
try:
    sky.Task.from_yaml_config(config())  # ORIGIN, COMMIT and POINT are required
except Exception as exc:
    print("refused:", type(exc).__name__, "ORIGIN" in str(exc))
"""
    python, reason = skypilot.result()
    if reason:
        if os.environ.get("NOTELM_REQUIRE_SLURM"):
            pytest.fail(reason)
        pytest.skip(reason)
    path = REPO / "configs/skypilot/point.yaml"
    proc = subprocess.run([str(python), "-c", check, str(path)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[0] == "[\"{'A100': 1}\", \"{'A10G': 1}\", \"{'L4': 1}\"]", lines
    assert lines[1] == "p1 -S train.epochs=2"
    assert lines[2].startswith("refused: ") and lines[3].startswith("refused: ") and lines[3].endswith("True")
    run = yaml.safe_load(path.read_text())["run"]  # the same round trip as a Slurm task
    assert 'dvc exp run --pull -n "$POINT" $SETS' in run and 'dvc exp push --run-cache origin "$POINT"' in run
