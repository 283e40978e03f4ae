"""The grid on Slurm: one array task per point, the shared stages once before them, results back through
`dvc exp push`.

`submit` checks that the jobs can reach what they need (HEAD on the git remote `origin`, a default DVC
remote in the committed .dvc/config, a clean work tree), skips the points already pushed for HEAD (or still
queued), then submits: first a job that runs the stages no point changes (`points.shared_stages`) and pushes
their outputs; then, after it succeeds, one array job per distinct resource request
(`resources.for_point`). Each task clones `origin` at HEAD into node-local scratch, copies in the shared
job's dvc.lock and git-tracked outputs (so DVC finds those stages up to date and pulls their cached outputs
instead of recomputing them), runs `dvc exp run -n <point> -S ...`, and pushes the experiment: its git refs
to `origin`, its outputs to the DVC remote. A job writes its state (`running`, `done`, `failed <exit code>`)
to `<grid dir>/state/<Slurm job id>`; the grid dir (default `logs/grid/<grid name>/`, inside the repository,
so on storage the nodes share) also holds each submission's rendered scripts, the logs, the shared job's
`shared-tree/<its id>` and `grid.json`, the ledger of what was submitted (point -> its job).

`status` answers from the git remote (an experiment pushed there is done), the state files and `squeue`;
`collect` pulls the finished experiments' refs so `dvc exp show` and `notelm compare` list them.

Written by hand: no maintained library submits DVC experiments to Slurm (DVC's own `dvc machine` was
dropped, iterative/dvc#10855; submitit and SkyPilot run Python functions or containers, not a git + DVC
round trip), and the job script is the part a cluster user must be able to read.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import subprocess
import sys
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from notelm.cluster.points import NAME, Point
from notelm.cluster.resources import Resources
from notelm.core.errors import NoteLMError
from notelm.core.files import atomic_open

GRIDS = Path("logs/grid")
LEDGER = "grid.json"
SHARED = "shared"  # the name of the job that runs the shared stages (not a point name: points are experiments)
SHARED_TREE = "shared-tree"  # in the grid dir: dvc.lock and the git-tracked files the shared stages wrote


def run(cmd: list[str], cwd: str | Path = ".", check: bool = True) -> subprocess.CompletedProcess:
    """Run a command; with `check`, a NoteLMError naming it and its output when it fails."""
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True,
                              env={**os.environ, "DVC_NO_ANALYTICS": "1"})
    except FileNotFoundError:
        raise NoteLMError(f"`{cmd[0]}` is not installed here (needed for `{' '.join(cmd)}`)") from None
    if check and proc.returncode != 0:
        output = (proc.stderr or proc.stdout).strip()[-800:]
        raise NoteLMError(f"`{shlex.join(cmd)}` failed ({proc.returncode}): {output}")
    return proc


# ------------------------------------------------------------------ what the jobs need from the submitter


@dataclass(frozen=True)
class Origin:
    """Where the jobs get the code and send the results."""

    url: str
    """The git remote `origin` (a path made absolute)."""
    commit: str
    """HEAD, which every job checks out."""


def origin(root: Path) -> Origin:
    """HEAD and `origin`'s URL; a NoteLMError with the fix when a job could not check HEAD out or push back."""
    proc = run(["git", "remote", "get-url", "origin"], root, check=False)
    if proc.returncode != 0:
        raise NoteLMError("the jobs clone the git remote `origin` and push their experiments to it, and this "
                          "repository has none: `git remote add origin <url>` (a bare repository the nodes reach)")
    url = proc.stdout.strip()
    if "://" not in url and ":" not in url.split("/")[0] and not os.path.isabs(url):
        url = str((root / url).resolve())
    dirty = run(["git", "status", "--porcelain", "--untracked-files=no"], root).stdout.strip()
    if dirty:
        raise NoteLMError("the jobs run the committed code, and these tracked files have changes that would not "
                          f"reach them:\n{dirty}\ncommit (and push) them, or stash them, then submit again")
    commit = run(["git", "rev-parse", "HEAD"], root).stdout.strip()
    run(["git", "fetch", "-q", "origin"], root)
    if not run(["git", "branch", "-r", "--contains", commit], root).stdout.strip():
        raise NoteLMError(f"HEAD ({commit[:7]}) is not on `origin`, which the jobs clone: `git push origin HEAD` "
                          "(to a branch), then submit again")
    return Origin(url, commit)


def dvc_remote(root: Path) -> str:
    """The default DVC remote of the committed .dvc/config; a NoteLMError with the fix when there is none."""
    name = run(["dvc", "remote", "default", "--project"], root, check=False).stdout.strip()
    if not name:
        raise NoteLMError("the jobs push their outputs to the default DVC remote of the committed .dvc/config, and "
                          "it has none: `dvc remote add -d team <storage the nodes reach>`, commit .dvc/config, push")
    return name


def pushed(url: str, commit: str, root: Path = Path(".")) -> set[str]:
    """The names of the experiments on the git remote `url` whose baseline is `commit` (DVC keeps an
    experiment as refs/exps/<commit[:2]>/<commit[2:]>/<name>)."""
    refs = run(["git", "ls-remote", url, f"refs/exps/{commit[:2]}/{commit[2:]}/*"], root).stdout
    return {line.split("/")[-1] for line in refs.splitlines() if line.strip()}


# ------------------------------------------------------------------ the job script


def script(grid_dir: Path, where: Origin, bin_dir: str, name: str, points: list[Point] | None,
           stages: list[str], request: Resources, extra: list[str], tree: str = "", max_running: int = 0) -> str:
    """The sbatch script of the shared-stages job (`points` None: `dvc repro <stages>`, `dvc push`, its tree
    left for the points) or of one array job (a task per point: `dvc exp run`, `dvc exp push`), the points
    copying in the shared job's `tree`. Every value is shell-quoted."""
    array = points is not None
    head = [f"--job-name={name}-{'grid' if array else SHARED}",
            f"--output={grid_dir / 'logs'}/{'%A_%a' if array else SHARED + '-%j'}.out",
            *([f"--array=0-{len(points) - 1}{f'%{max_running}' if max_running else ''}"] if array else []),
            *request.sbatch(), *extra]  # extra last: an option given twice, sbatch takes the last
    job = '"${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"' if array else '"$SLURM_JOB_ID"'
    work = _point_work(points, tree) if array else _shared_work(stages)
    return "\n".join(["#!/bin/bash", *(f"#SBATCH {opt}" for opt in head), *_prologue(grid_dir, where, bin_dir, job),
                      *work]) + "\n"


def _prologue(grid_dir: Path, where: Origin, bin_dir: str, job: str) -> list[str]:
    """The lines every job runs first: its state file (keyed by its Slurm id, so a resubmission never writes
    over an earlier job's), a clone of the commit in node-local scratch, removed at the end."""
    q = shlex.quote
    return [
        "# Rendered by `notelm grid --slurm` (src/notelm/cluster/slurm.py); kept beside its logs for reading.",
        "set -euo pipefail",
        f"GRID={q(str(grid_dir))}",
        f"ORIGIN={q(where.url)}",
        f"COMMIT={where.commit}",
        f"JOB={job}",
        f"export PATH={q(bin_dir)}:\"$PATH\"   # the submitting environment's python and dvc (shared storage)",
        "export DVC_NO_ANALYTICS=1 OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}",
        'state() {  # the job\'s state, replaced whole (a reader never sees half a line)',
        '  printf "%s\\n" "$*" > "$GRID/state/.$JOB.tmp" && mv "$GRID/state/.$JOB.tmp" "$GRID/state/$JOB"',
        '}',
        'WORK=$(mktemp -d "${NOTELM_SCRATCH:-${TMPDIR:-/tmp}}/notelm-$JOB.XXXXXX")',
        "trap 'exit 143' TERM   # Slurm's time limit or scancel: recorded as failed 143",
        "trap 'rc=$?; if [ $rc -eq 0 ]; then state done; else state failed $rc; fi; rm -rf \"$WORK\"' EXIT",
        'state running "$(hostname)"',
        "# one command a line: under set -e a failure inside `a && b` would not stop the job",
        'git clone -q --no-checkout "$ORIGIN" "$WORK"',
        'cd "$WORK"',
        'git checkout -q "$COMMIT"',
        'export PYTHONPATH="$WORK/src"   # the submitted commit\'s code, whatever the submitting checkout holds now',
    ]


def _point_work(points: list[Point], tree: str) -> list[str]:
    """An array task: its point by task id, the shared stages' tree copied in, `dvc exp run`, `dvc exp push`."""
    q = shlex.quote
    cases = [f"  {i}) POINT={q(p.name)}; SETS=({' '.join(q(a) for s in p.sets() for a in ('-S', s))}) ;;"
             for i, p in enumerate(points)]
    return ['case "$SLURM_ARRAY_TASK_ID" in', *cases,
            '  *) echo "notelm grid: no point for array task $SLURM_ARRAY_TASK_ID" >&2; exit 2 ;;', "esac",
            'echo "notelm grid: $POINT at $COMMIT on $(hostname), in $WORK"',
            *([f"cp -a {q(tree)}/. .   # dvc.lock and the git-tracked outputs of the shared stages"] if tree else []),
            'dvc exp run --pull -n "$POINT" ${SETS[@]+"${SETS[@]}"}   # --pull: cached outputs from the DVC remote',
            'dvc exp push --run-cache origin "$POINT"   # git refs to origin, outputs to the DVC remote']


def _shared_work(stages: list[str]) -> list[str]:
    """The shared job: reproduce the stages, push their outputs, leave dvc.lock and the files git would commit
    in shared-tree/<its id> -- what DVC cannot share through the run-cache (a stage with an uncached output,
    e.g. a git-tracked metrics file, is never restored from it on another machine)."""
    targets = " ".join(shlex.quote(s) for s in stages)
    tree = f'"$GRID/{SHARED_TREE}/$JOB"'
    return ['echo "notelm grid: the shared stages at $COMMIT on $(hostname), in $WORK"',
            f"dvc repro --pull {targets}",
            f"dvc push --run-cache {targets}   # their cached outputs, for the points to pull",
            f"mkdir -p {tree}.tmp",
            f"git ls-files -z -m -o --exclude-standard | xargs -0 -r cp --parents -t {tree}.tmp",
            f"mv {tree}.tmp {tree}"]


# ------------------------------------------------------------------ submit


@dataclass
class Record:
    """What the ledger keeps of one submitted point (or of the shared-stages job)."""

    name: str
    commit: str
    job: str
    """The Slurm job id of the task: `<array>_<index>`, or the shared job's id."""
    log: str
    overrides: dict[str, Any]
    request: str
    submitted: str


def sbatch(path: Path, dependency: str | None = None) -> str:
    """Submit a script; its job id."""
    cmd = ["sbatch", "--parsable", *([f"--dependency=afterok:{dependency}", "--kill-on-invalid-dep=yes"]
                                     if dependency else []), str(path)]
    return run(cmd).stdout.strip().split(";")[0]


def submit(points: list[Point], requests: dict[str, Resources], stages: list[str], grid_dir: Path,
           name: str, extra: list[str], root: Path = Path("."), dry_run: bool = False, max_running: int = 0) -> str:
    """Submit the points not yet pushed for HEAD nor queued (see the module docstring); return what it did,
    one line each. `requests`: point name -> its Slurm request. With `dry_run`, only render the scripts."""
    if SHARED in {p.name for p in points}:
        raise NoteLMError(f"a point may not be named {SHARED!r} (the shared stages' job is); rename it")
    where = origin(root)
    dvc_remote(root)
    grid_dir = grid_dir.resolve()  # the jobs write there from their own clones
    ledger = read_ledger(grid_dir)
    lines, todo = pending(points, ledger, where, root, dry_run)
    if not todo:
        return "\n".join(lines + ["nothing to submit"]) + "\n"
    for sub in ("logs", "state", SHARED_TREE):
        (grid_dir / sub).mkdir(parents=True, exist_ok=True)
    bin_dir = str(Path(sys.executable).parent)
    now = dt.datetime.now(dt.timezone.utc)
    stamp, when = now.strftime("%Y%m%dT%H%M%S"), now.isoformat(timespec="seconds")
    shared, tree = None, ""
    if stages:
        request = Resources(max((requests[p.name].mem_gb or 0 for p in todo), default=0) or None,
                            max(requests[p.name].gpus for p in todo), "the largest of the points'")
        path = grid_dir / f"{stamp}-{SHARED}.sbatch"
        write(path, script(grid_dir, where, bin_dir, name, None, stages, request, extra))
        shared = "(dry run)" if dry_run else sbatch(path)
        tree = str(grid_dir / SHARED_TREE / shared)
        ledger[SHARED] = Record(SHARED, where.commit, shared, str(grid_dir / "logs" / f"{SHARED}-{shared}.out"),
                                {}, " ".join(request.sbatch()), when)
        record(grid_dir, ledger, dry_run)
        lines.append(f"{SHARED}: job {shared}, runs {' '.join(stages)} once, before the points ({path})")
    groups: dict[tuple, list[Point]] = {}
    for point in todo:
        groups.setdefault(requests[point.name].key, []).append(point)
    for number, group in enumerate(groups.values()):
        request = requests[group[0].name]
        path = grid_dir / f"{stamp}-array-{number}.sbatch"
        write(path, script(grid_dir, where, bin_dir, name, group, stages, request, extra, tree, max_running))
        array = "(dry run)" if dry_run else sbatch(path, shared)
        asked = " ".join(request.sbatch()) or "cluster defaults"
        for index, point in enumerate(group):
            ledger[point.name] = Record(point.name, where.commit, f"{array}_{index}",
                                        str(grid_dir / "logs" / f"{array}_{index}.out"), point.overrides, asked, when)
            lines.append(f"{point.name}: job {array}_{index} [{asked}] {requests[point.name].why}")
        record(grid_dir, ledger, dry_run)
        lines.append(f"  ({path})")
    return "\n".join(lines) + "\n"


def pending(points: list[Point], ledger: dict[str, Record], where: Origin, root: Path,
            dry_run: bool) -> tuple[list[str], list[Point]]:
    """(a line for each point skipped, the points to submit): skipped are those whose experiment is on
    `origin` for this commit and those of this commit that Slurm still has queued or running."""
    done = pushed(where.url, where.commit, root)
    try:
        live = queued(ledger)
    except NoteLMError:
        if not dry_run:
            raise
        live = {}  # a dry run where squeue is missing: nothing is queued
    lines, todo = [], []
    for point in points:
        if point.name in done:
            lines.append(f"{point.name}: skipped, already pushed for {where.commit[:7]}")
        elif point.name in live and ledger[point.name].commit == where.commit:
            lines.append(f"{point.name}: skipped, still {live[point.name]} (job {ledger[point.name].job})")
        else:
            todo.append(point)
    return lines, todo


def record(grid_dir: Path, ledger: dict[str, Record], dry_run: bool) -> None:
    """Write the ledger as soon as a job is submitted: a later sbatch that fails loses nothing already queued."""
    if not dry_run:
        write_ledger(grid_dir, ledger)


def write(path: Path, text: str) -> None:
    """Write `text` to `path` whole (a temp file, then rename)."""
    with atomic_open(path) as fh:
        fh.write(text)


def read_ledger(grid_dir: Path) -> dict[str, Record]:
    """The grid dir's ledger by point name (empty when nothing was submitted there)."""
    path = grid_dir / LEDGER
    if not path.is_file():
        return {}
    try:
        return {r["name"]: Record(**r) for r in json.loads(path.read_text(encoding="utf-8"))["points"]}
    except (ValueError, KeyError, TypeError) as exc:
        raise NoteLMError(f"{path}: not a grid ledger ({exc}); move it away to start the grid afresh") from exc


def write_ledger(grid_dir: Path, ledger: dict[str, Record]) -> None:
    """Write the ledger whole (a temp file, then rename): a reader sees the old or the new one."""
    with atomic_open(grid_dir / LEDGER) as fh:
        json.dump({"points": [asdict(r) for r in ledger.values()]}, fh, indent=1)


# ------------------------------------------------------------------ status and collect


def submitted(grid_dir: Path, root: Path) -> tuple[dict[str, Record], str]:
    """(the grid dir's ledger, the URL of `origin`); a NoteLMError when nothing was submitted from there."""
    ledger = read_ledger(grid_dir)
    if not ledger:
        raise NoteLMError(f"{grid_dir}: no grid was submitted from here (notelm grid --slurm writes {LEDGER})")
    return ledger, run(["git", "remote", "get-url", "origin"], root).stdout.strip()


def queued(ledger: dict[str, Record]) -> dict[str, str]:
    """Point name -> its Slurm state (PENDING, RUNNING, ...) for the ledger's jobs that `squeue` still lists."""
    if not ledger:
        return {}
    out = run(["squeue", "--me", "-h", "-r", "-o", "%i|%T|%r"]).stdout
    jobs = {}
    for line in out.splitlines():
        job, state, reason = (line.split("|") + ["", ""])[:3]
        jobs[job.strip()] = state.strip() + (f" ({reason.strip()})" if reason.strip() not in ("", "None") else "")
    return {name: jobs[r.job] for name, r in ledger.items() if r.job in jobs}


def task_state(grid_dir: Path, job: str) -> list[str]:
    """The words the job `job` (`<array>_<task>` or an id) last wrote to its state file (empty: never started)."""
    path = grid_dir / "state" / job
    return path.read_text(encoding="utf-8").split() if path.is_file() else []


EXITS = {143: "terminated: time limit or scancel", 137: "killed: memory limit?", 255: "a stage failed"}


def status_rows(grid_dir: Path, root: Path = Path(".")) -> list[dict[str, str]]:
    """Every point of the ledger (the shared job first): name, state (pending, running, done, failed), job, log
    and a detail. Done means pushed to `origin`; a task that stopped without writing its end (killed
    outright: node failure, or past Slurm's kill wait) is failed."""
    ledger, url = submitted(grid_dir, root)
    done = {commit: pushed(url, commit, root) for commit in {r.commit for r in ledger.values()}}
    live = queued(ledger)
    shared = task_state(grid_dir, ledger[SHARED].job) if SHARED in ledger else []
    rows = []
    for name, record in sorted(ledger.items(), key=lambda kv: kv[0] != SHARED):
        words = task_state(grid_dir, record.job)
        if name != SHARED and name in done[record.commit]:
            state, detail = "done", "pushed to origin"
        elif name in live:
            state, detail = live[name].split(" ")[0].lower(), live[name].partition(" ")[2]
        elif words[:1] == ["done"]:
            state, detail = ("done", "stages pushed") if name == SHARED else ("failed", "finished, not on origin")
        elif words[:1] == ["failed"]:
            code = int(words[1]) if len(words) > 1 and words[1].isdigit() else None
            state, detail = "failed", f"exit code {code}" + (f" ({EXITS[code]})" if code in EXITS else "")
        elif words[:1] == ["running"]:
            state, detail = "failed", "stopped without reporting (node failure, or killed past Slurm's KillWait)"
        elif name != SHARED and shared[:1] == ["failed"]:
            state, detail = "failed", "not run: the shared stages failed"
        else:
            state, detail = "failed", "left the queue without starting (cancelled?)"
        rows.append({"point": name, "state": state, "job": record.job, "log": record.log, "detail": detail})
    return rows


def status_text(grid_dir: Path, root: Path = Path(".")) -> str:
    """`notelm grid status`: a table of the points and a count per state."""
    from notelm.report import markdown

    rows = status_rows(grid_dir, root)
    table = markdown.table(["point", "state", "job", "log", "detail"],
                           [[r["point"], r["state"], r["job"], r["log"], r["detail"]] for r in rows])
    counts = Counter(r["state"] for r in rows if r["point"] != SHARED)
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    return "\n".join([f"grid {grid_dir}: {summary}", "", *table]) + "\n"


def collect(grid_dir: Path, root: Path = Path("."), outputs: bool = False) -> str:
    """Pull the refs of every finished point (`dvc exp pull`; with `outputs`, their cached outputs too) so
    `dvc exp show` and `notelm compare` list them; return what it pulled."""
    ledger, url = submitted(grid_dir, root)
    pulled = []
    for commit in {r.commit for r in ledger.values()}:
        names = sorted(pushed(url, commit, root) & set(ledger))
        refs = [f"refs/exps/{commit[:2]}/{commit[2:]}/{n}" for n in names]
        if refs:
            run(["dvc", "exp", "pull", "-f", *([] if outputs else ["--no-cache"]), "origin", *refs], root)
            pulled += names
    waiting = sorted(set(ledger) - set(pulled) - {SHARED})
    return (f"pulled {len(pulled)}: {' '.join(pulled) or '-'}\n"
            + (f"not on origin (yet): {' '.join(waiting)}; `notelm grid status` says why\n" if waiting else ""))


def grid_dirs(root: Path = Path(".")) -> list[Path]:
    """The grid dirs under logs/grid/ that hold a ledger, most recent first."""
    found = [p.parent for p in (root / GRIDS).glob(f"*/{LEDGER}")]
    return sorted(found, key=lambda p: (p / LEDGER).stat().st_mtime, reverse=True)


def grid_name(text: str) -> str:
    """A grid's name as a directory name."""
    return NAME.sub("_", text).strip("._") or "grid"
