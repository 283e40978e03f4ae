"""cluster/slurm.py: the rendered job scripts (run here with stub git and dvc), what submit checks first,
the experiments on the git remote, and each point's state as `notelm grid status` reports it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from notelm.cluster import slurm
from notelm.cluster.points import Point
from notelm.cluster.resources import Resources
from notelm.core.errors import NoteLMError

WHERE = slurm.Origin("/srv/origin.git", "ab" + "c" * 38)


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def stubs(tmp_path: Path, dvc_exit: int = 0, clone_exit: int = 0) -> Path:
    """A bin dir whose git and dvc log their arguments (one line per call); `git clone` and `dvc exp run` exit as
    told (a clone that succeeds makes its directory; `dvc exp run` logs the dvc.lock it finds)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = f'#!/bin/bash\nprintf "%s|" "$(basename "$0")" "$@" >> {tmp_path}/calls; echo >> {tmp_path}/calls\n'
    (bin_dir / "git").write_text(log + f'[ "$1" = clone ] && {{ [ {clone_exit} = 0 ] && mkdir -p "${{@: -1}}"; '
                                       f'exit {clone_exit}; }}\nexit 0\n')
    (bin_dir / "dvc").write_text(log + f'[ "$1" = exp ] && [ "$2" = run ] && '
                                       f'{{ cat dvc.lock >> {tmp_path}/calls 2>/dev/null; exit {dvc_exit}; }}\n'
                                       'exit 0\n')
    for stub in bin_dir.iterdir():
        stub.chmod(0o755)
    return bin_dir


def run_task(tmp_path: Path, text: str, task: int | None, bin_dir: Path) -> subprocess.CompletedProcess:
    path = tmp_path / "job.sh"
    path.write_text(text)
    env = {**os.environ, "SLURM_JOB_ID": "7", "TMPDIR": str(tmp_path), "SLURM_CPUS_PER_TASK": "3",
           **({"SLURM_ARRAY_JOB_ID": "7", "SLURM_ARRAY_TASK_ID": str(task)} if task is not None else {})}
    return subprocess.run(["bash", str(path)], env=env, capture_output=True, text=True)


def test_an_array_task_runs_its_own_point_and_reports_done(tmp_path):
    grid = tmp_path / "grid"
    (grid / "state").mkdir(parents=True)
    (grid / "shared-tree/5/metrics").mkdir(parents=True)  # what shared job 5 left for the points
    (grid / "shared-tree/5/dvc.lock").write_text("lock of the shared stages\n")
    points = [Point("a", {"train.epochs": 1}), Point("b b'", {"data.raw_path": "my notes.csv", "x": [1, 2]})]
    bin_dir = stubs(tmp_path)
    text = slurm.script(grid, WHERE, str(bin_dir), "g", points, ["prepare", "audit"], Resources(3, 1), ["--time=1:00"],
                        str(grid / "shared-tree/5"), max_running=4)
    assert "#SBATCH --array=0-1%4\n#SBATCH --mem=3G\n#SBATCH --gres=gpu:1\n#SBATCH --time=1:00\n" in text
    proc = run_task(tmp_path, text, 1, bin_dir)
    assert proc.returncode == 0, proc.stderr
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls[0].startswith("git|clone|-q|--no-checkout|/srv/origin.git|")
    assert "git|checkout|-q|" + WHERE.commit + "|" in calls
    assert "lock of the shared stages" in calls  # copied into the clone before `dvc exp run`
    assert "dvc|exp|run|--pull|-n|b b'|-S|data.raw_path=my notes.csv|-S|x=[1, 2]|" in calls  # quoted whole
    assert "dvc|exp|push|--run-cache|origin|b b'|" in calls
    assert (grid / "state" / "7_1").read_text() == "done\n"
    assert not list(tmp_path.glob("notelm-*"))  # the clone in scratch is gone


def test_a_failing_point_reports_its_exit_code_and_runs_no_push(tmp_path):
    grid = tmp_path / "grid"
    (grid / "state").mkdir(parents=True)
    bin_dir = stubs(tmp_path, dvc_exit=3)
    text = slurm.script(grid, WHERE, str(bin_dir), "g", [Point("a", {})], [], Resources(None), [])
    proc = run_task(tmp_path, text, 0, bin_dir)
    assert proc.returncode == 3
    assert (grid / "state" / "7_0").read_text() == "failed 3\n"
    calls = (tmp_path / "calls").read_text()
    assert "exp|push" not in calls and "lock of" not in calls  # no shared stages: nothing copied in


def test_a_clone_that_fails_stops_the_task_before_any_dvc_command(tmp_path):
    """Under `set -e` a failure inside `clone && cd && checkout` would not stop the script, which would then run
    in sbatch's directory, the user's checkout: the commands stand one a line."""
    grid = tmp_path / "grid"
    (grid / "state").mkdir(parents=True)
    bin_dir = stubs(tmp_path, clone_exit=128)
    text = slurm.script(grid, WHERE, str(bin_dir), "g", [Point("a", {})], ["prepare"], Resources(None), [],
                        str(grid / "shared-tree/5"))
    proc = run_task(tmp_path, text, 0, bin_dir)
    assert proc.returncode == 128 and (grid / "state" / "7_0").read_text() == "failed 128\n"
    calls = (tmp_path / "calls").read_text().splitlines()
    assert len(calls) == 1 and calls[0].startswith("git|clone|"), calls  # nothing after the failed clone


def test_a_task_without_a_point_fails_and_says_so(tmp_path):
    grid = tmp_path / "grid"
    (grid / "state").mkdir(parents=True)
    bin_dir = stubs(tmp_path)
    proc = run_task(tmp_path, slurm.script(grid, WHERE, str(bin_dir), "g", [Point("a", {})], [], Resources(None), []),
                    3, bin_dir)
    assert proc.returncode == 2 and "no point for array task 3" in proc.stderr
    assert not any(line.startswith("dvc|") for line in (tmp_path / "calls").read_text().splitlines())


def test_the_shared_job_reproduces_the_shared_stages_pushes_them_and_leaves_the_points_its_tree(tmp_path):
    grid = tmp_path / "grid"
    (grid / "state").mkdir(parents=True)
    bin_dir = stubs(tmp_path)
    text = slurm.script(grid, WHERE, str(bin_dir), "g", None, ["prepare", "audit"], Resources(8), [])
    assert "--array" not in text and "#SBATCH --mem=8G" in text
    assert f"#SBATCH --output={grid}/logs/shared-%j.out" in text
    assert run_task(tmp_path, text, None, bin_dir).returncode == 0
    calls = (tmp_path / "calls").read_text().splitlines()
    assert "dvc|repro|--pull|prepare|audit|" in calls and "dvc|push|--run-cache|prepare|audit|" in calls
    assert "git|ls-files|-z|-m|-o|--exclude-standard|" in calls and (grid / "shared-tree/7").is_dir()
    assert (grid / "state" / "7").read_text() == "done\n"
    assert subprocess.run(["bash", "-n", "-c", text]).returncode == 0


@pytest.fixture
def clone(tmp_path):
    """A repository with one commit and a bare `origin` it is pushed to."""
    origin, repo = tmp_path / "origin.git", tmp_path / "repo"
    git("init", "-q", "--bare", str(origin), cwd=tmp_path)
    git("init", "-q", str(repo), cwd=tmp_path)
    git("config", "user.email", "t@example.org", cwd=repo)
    git("config", "user.name", "t", cwd=repo)
    (repo / "a.txt").write_text("a")
    git("add", "a.txt", cwd=repo)
    git("commit", "-qm", "a", cwd=repo)
    return repo, origin


def test_submit_refuses_what_the_jobs_could_not_use_and_says_the_fix(clone):
    repo, origin = clone
    with pytest.raises(NoteLMError, match="git remote add origin"):
        slurm.origin(repo)
    git("remote", "add", "origin", "../origin.git", cwd=repo)
    with pytest.raises(NoteLMError, match=r"HEAD \(\w{7}\) is not on `origin`.*git push origin HEAD"):
        slurm.origin(repo)
    git("push", "-q", "origin", "HEAD:refs/heads/main", cwd=repo)
    (repo / "a.txt").write_text("changed")
    with pytest.raises(NoteLMError, match="a.txt"):
        slurm.origin(repo)
    git("checkout", "a.txt", cwd=repo)
    found = slurm.origin(repo)
    assert found.url == str(origin) and found.commit == git("rev-parse", "HEAD", cwd=repo).strip()


def test_pushed_lists_the_experiments_of_one_baseline_on_the_remote(clone):
    repo, origin = clone
    commit = git("rev-parse", "HEAD", cwd=repo).strip()
    for name, base in (("done-1", commit), ("other", "ff" * 20)):
        git("update-ref", f"refs/exps/{base[:2]}/{base[2:]}/{name}", commit, cwd=repo)
    git("push", "-q", str(origin), "refs/exps/*:refs/exps/*", cwd=repo)
    assert slurm.pushed(str(origin), commit) == {"done-1"}


def ledger(grid: Path, names: list[str]) -> None:
    records = {n: slurm.Record(n, WHERE.commit, f"5_{i}", str(grid / f"logs/5_{i}.out"), {}, "", "")
               for i, n in enumerate(names)}
    records[slurm.SHARED] = slurm.Record(slurm.SHARED, WHERE.commit, "4", str(grid / "logs/shared-4.out"), {}, "", "")
    slurm.write_ledger(grid, records)


def test_status_tells_each_point_s_state_from_the_remote_the_queue_and_the_state_files(tmp_path, monkeypatch):
    grid = tmp_path / "grid"
    (grid / "state").mkdir(parents=True)
    ledger(grid, ["pushed", "queued", "running", "crashed", "timed-out", "killed", "vanished"])  # jobs 5_0 ... 5_6
    for job, words in (("4", "done"), ("5_2", "running node1"), ("5_3", "failed 2"), ("5_4", "failed 143"),
                       ("5_5", "running node1"), ("9_6", "failed 1")):  # 9_6: another submission's job
        (grid / "state" / job).write_text(words + "\n")
    monkeypatch.setattr(slurm, "run", lambda cmd, *a, **k: subprocess.CompletedProcess(cmd, 0, WHERE.url, ""))
    monkeypatch.setattr(slurm, "pushed", lambda url, commit, root=None: {"pushed"})
    monkeypatch.setattr(slurm, "queued", lambda led: {"queued": "PENDING (Resources)", "running": "RUNNING"})
    rows = {r["point"]: r for r in slurm.status_rows(grid)}
    names = ("shared", "pushed", "queued", "running", "crashed", "timed-out", "killed", "vanished")
    assert [rows[n]["state"] for n in names] == ["done", "done", "pending", "running", "failed", "failed", "failed",
                                                 "failed"]
    assert rows["queued"]["detail"] == "(Resources)" and rows["crashed"]["detail"] == "exit code 2"
    assert rows["timed-out"]["detail"] == "exit code 143 (terminated: time limit or scancel)"
    assert "without reporting" in rows["killed"]["detail"] and "cancelled" in rows["vanished"]["detail"]
    assert rows["crashed"]["log"] == str(grid / "logs/5_3.out") and rows["crashed"]["job"] == "5_3"
    (grid / "state" / "4").write_text("failed 1\n")
    assert slurm.status_rows(grid)[-1]["detail"] == "not run: the shared stages failed"
    text = slurm.status_text(grid)
    assert text.splitlines()[0] == f"grid {grid}: 1 done, 4 failed, 1 pending, 1 running"  # the shared job not counted


def test_status_without_a_submission_says_so_and_a_bad_ledger_names_itself(tmp_path):
    with pytest.raises(NoteLMError, match="no grid was submitted"):
        slurm.status_rows(tmp_path)
    with pytest.raises(NoteLMError, match="no grid was submitted"):
        slurm.collect(tmp_path)
    (tmp_path / "grid.json").write_text(json.dumps({"points": [{"name": "x"}]}))
    with pytest.raises(NoteLMError, match="grid.json: not a grid ledger"):
        slurm.read_ledger(tmp_path)


def test_queued_reads_squeue_s_one_line_per_array_task(monkeypatch):
    out = "5_0|RUNNING|None\n5_1|PENDING|Dependency\n9|RUNNING|None\n"
    monkeypatch.setattr(slurm, "run", lambda cmd, *a, **k: subprocess.CompletedProcess(cmd, 0, out, ""))
    records = {n: slurm.Record(n, "c", job, "", {}, "", "") for n, job in (("a", "5_0"), ("b", "5_1"), ("c", "5_2"))}
    assert slurm.queued(records) == {"a": "RUNNING", "b": "PENDING (Dependency)"}


def test_submit_groups_points_by_request_and_records_each_job_as_soon_as_it_is_queued(tmp_path, monkeypatch):
    grid = tmp_path / "grid"
    monkeypatch.setattr(slurm, "origin", lambda root: WHERE)
    monkeypatch.setattr(slurm, "dvc_remote", lambda root: "team")
    monkeypatch.setattr(slurm, "pushed", lambda url, commit, root=None: {"done"})
    monkeypatch.setattr(slurm, "queued", lambda ledger: {})
    calls = []

    def sbatch(path, dependency=None):
        calls.append((path.name.split("-", 1)[1], dependency))  # <submission time>-shared.sbatch, ...
        if len(calls) == 3:
            raise NoteLMError("`sbatch` failed (1): Requested node configuration is not available")
        return str(len(calls))

    monkeypatch.setattr(slurm, "sbatch", sbatch)
    points = [Point(n) for n in ("done", "a", "b", "c")]
    requests = {"done": Resources(2), "a": Resources(2), "b": Resources(2), "c": Resources(640)}
    with pytest.raises(NoteLMError, match="Requested node configuration"):
        slurm.submit(points, requests, ["prepare"], grid, "g", [])
    assert calls == [("shared.sbatch", None), ("array-0.sbatch", "1"), ("array-1.sbatch", "1")]
    ledger = slurm.read_ledger(grid)
    assert {n: r.job for n, r in ledger.items()} == {"shared": "1", "a": "2_0", "b": "2_1"}  # c never queued
    shared, c = next(grid.glob("*-shared.sbatch")).read_text(), next(grid.glob("*-array-1.sbatch")).read_text()
    assert "#SBATCH --mem=640G" in c and f"cp -a {grid}/shared-tree/1/. ." in c  # shared job 1's tree
    assert "#SBATCH --mem=640G" in shared  # the largest of the points' requests
    monkeypatch.setattr(slurm, "queued", lambda ledger: {"a": "RUNNING", "b": "PENDING (Dependency)"})
    monkeypatch.setattr(slurm, "sbatch", lambda path, dependency=None: "9")
    again = slurm.submit(points, requests, ["prepare"], grid, "g", [])
    assert "done: skipped, already pushed" in again and "a: skipped, still RUNNING (job 2_0)" in again
    assert "c: job 9_0 [--mem=640G]" in again and "b: job" not in again.replace("b: skipped", "")
    with pytest.raises(NoteLMError, match="may not be named 'shared'"):
        slurm.submit([Point("shared")], {"shared": Resources(1)}, [], grid, "g", [])
