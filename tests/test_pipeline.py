"""End to end: `dvc repro` in a temporary copy of the repository, tiny corpus, tiny random model.

Checks the promises of the pipeline itself: every stage runs, the metrics files have their stable
keys with sane values, a second `dvc repro` is a no-op, changing an `evaluate` param re-runs only
evaluate, editing a module a stage imports makes `dvc status` report that stage, an alias selects
its row, `dvc exp run -S ...` makes an experiment that `dvc exp show` lists, and a teammate who
clones and `dvc pull`s from a remote finds nothing to reproduce.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
HEADLINE = ["rouge1", "rouge2", "rougeL", "rougeLsum", "bertscore_precision", "bertscore_recall", "bertscore_f1"]

pytestmark = pytest.mark.slow


def sh(*cmd: str, cwd: Path) -> str:
    """Run a command; on failure show its output in the assertion message."""
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env={**os.environ, "DVC_NO_ANALYTICS": "1"})
    assert proc.returncode == 0, f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout + proc.stderr


def make_repo(root: Path, model_dir: Path) -> Path:
    """A committed git + DVC copy of the repository at `root` whose params select a tiny corpus and the tiny
    random llama at `model_dir` (row `tiny-llama`, alias `tiny`); nothing reproduced yet."""
    for name in ("dvc.yaml", "params.yaml", ".gitignore", ".dvcignore"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copytree(REPO / "configs", root / "configs")
    shutil.copytree(REPO / "labels", root / "labels")  # the labelled fact lines evaluate measures the extractor on
    with (root / "configs/models.yaml").open("a") as fh:
        fh.write(f"tiny-llama: {{source: {model_dir}, family: llama, method: full, aliases: [tiny]}}\n")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["model"] = "tiny"
    params["synthetic"].update(patients=20, admissions_per_patient=[1, 2], notes_per_admission=[2, 3])
    params["train"].update(max_steps=4, batch_size=4, max_length=64, logging_steps=1)
    params["generate"].update(max_new_tokens=8, batch_size=8)
    params["evaluate"].update(bootstrap_samples=200)
    params["memorize"].update(sample=8, canary_candidates=63, bootstrap_samples=200)
    params["suggest"].update(budget=6, limit=4, bootstrap_samples=200)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh("git", "init", "-q", cwd=root)
    sh("git", "config", "user.email", "ci@example.org", cwd=root)
    sh("git", "config", "user.name", "ci", cwd=root)
    sh("dvc", "init", "-q", cwd=root)
    sh("dvc", "config", "core.analytics", "false", cwd=root)
    sh("git", "add", "-A", cwd=root)
    sh("git", "commit", "-qm", "pipeline", cwd=root)  # dvclive records the git revision it trains at
    return root


@pytest.fixture(scope="module")
def repo(tmp_path_factory, tiny_model_factory) -> Path:
    """make_repo, reproduced and committed."""
    root = make_repo(tmp_path_factory.mktemp("repo"), tiny_model_factory("llama"))
    sh("dvc", "repro", cwd=root)
    sh("git", "add", "-A", cwd=root)
    sh("git", "commit", "-qm", "baseline", cwd=root)
    return root


def test_repro_writes_sane_metrics(repo):
    data = json.loads((repo / "metrics/detail/data.json").read_text())
    assert data["test"]["notes"] > 0
    leakage = json.loads((repo / "metrics/leakage.json").read_text())
    assert leakage == {"subject_overlap": 0, "exact_dup_test_in_train": 0, "gate": "pass"}
    detail = json.loads((repo / "metrics/detail/eval.json").read_text())
    for variant in ("pretrained", "finetuned"):
        block = detail["models"][variant]
        for key in HEADLINE:
            assert 0.0 <= block[key] <= 1.0, (variant, key, block[key])
            assert block[f"{key}_ci_low"] <= block[key] <= block[f"{key}_ci_high"]
        assert block["bits_per_byte"] > 0
    assert set(detail["baselines"]) == {"chance", "copy_forward", "aligned_copy", "prompt_tail", "retrieval"}
    assert detail["bootstrap"]["unit"] == "patient" and detail["bootstrap"]["clusters"] >= 1
    headline = json.loads((repo / "metrics/eval.json").read_text())
    assert headline["finetuned_vs_best_baseline"]["rougeL_verdict"] in ("better", "worse", "not distinguishable")
    generations = [json.loads(line) for line in (repo / "generations/finetuned.jsonl").read_text().splitlines()]
    test = [json.loads(line) for line in (repo / "data/prepared/test.jsonl").read_text().splitlines()]
    assert [g["note_id"] for g in generations] == [t["note_id"] for t in test if t["scored"]]
    assert (repo / "models/finetuned/model.safetensors").is_file()
    assert (repo / "models/base/tiny/model.safetensors").is_file()
    record = json.loads((repo / "models/finetuned/notelm_train.json").read_text())
    assert record["model"] == "tiny-llama"
    memorization = json.loads((repo / "metrics/memorization.json").read_text())
    assert memorization["gate"] == "pass" and set(memorization) == {"pretrained", "finetuned", "references", "gate"}
    fine = memorization["finetuned"]
    assert -1 <= fine["exact_gap"] <= fine["exact_gap_upper"] <= 1 and fine["canary_gap"] <= fine["canary_gap_upper"]
    placements = record["canaries"]["placements"]  # where the train stage planted them: what memorize replays
    assert sum(map(len, placements.values())) == len(record["canaries"]["planted"]) * record["canaries"]["repeats"]
    typed = json.loads((repo / "metrics/suggest.json").read_text())
    assert {"pretrained", "finetuned", "chart_copy", "ngram"} <= set(typed)
    assert typed["finetuned_vs_best_proposer"]["keystroke_savings_verdict"] in ("better", "worse", "not distinguishable")
    secrets = record["canaries"]["planted"] + record["canaries"]["controls"]  # the default pipeline plants some
    assert len(record["canaries"]["planted"]) == yaml.safe_load((repo / "params.yaml").read_text())["train"]["canaries"]
    for path in ("data/prepared/train.jsonl", "data/prepared/val.jsonl", "data/prepared/test.jsonl",
                 "generations/pretrained.jsonl", "generations/finetuned.jsonl", "generations/extraction.jsonl",
                 "generations/suggestions.jsonl"):
        assert not any(s in (repo / path).read_text() for s in secrets), path


def test_second_repro_is_a_no_op_and_evaluate_params_rerun_only_evaluate(repo):
    out = sh("dvc", "repro", cwd=repo)
    assert "Running stage" not in out
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["evaluate"]["bootstrap_samples"] = 100
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    status = sh("dvc", "status", cwd=repo)
    changed = {line.strip().rstrip(":") for line in status.splitlines() if line and not line.startswith("\t")
               and line.strip().endswith(":") and "changed" not in line}
    assert changed == {"evaluate"}, status  # status lists the stage whose params changed
    out = sh("dvc", "repro", cwd=repo)
    ran = [line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")]
    assert ran[0] == "evaluate" and set(ran) <= {"evaluate", "report"}, ran  # only evaluate and what depends on it
    sh("git", "checkout", "--", "params.yaml", "dvc.lock", "metrics", cwd=repo)  # back to the committed run
    sh("dvc", "checkout", "-q", cwd=repo)


def test_editing_an_imported_module_makes_dvc_status_report_its_stages(repo):
    loss = repo / "src/notelm/training/loss.py"
    original = loss.read_text()
    loss.write_text(original + "\n# a change the train stage runs\n")
    try:
        status = sh("dvc", "status", cwd=repo)
        changed = {line.strip().rstrip(":") for line in status.splitlines() if line.strip().endswith(":")
                   and not line.startswith("\t")}
        assert changed == {"train"}, status  # only the stage that imports training/loss.py (the later ones follow on repro)
        assert re.search(r"modified:\s+src/notelm/training\n", status), status  # the room, a folder dep of train
    finally:
        loss.write_text(original)
    assert "up to date" in sh("dvc", "status", cwd=repo)


def stale_stages(repo: Path) -> set[str]:
    """The stages `dvc status` reports (each heads a block ending with a colon)."""
    status = sh("dvc", "status", cwd=repo)
    return {line.strip().rstrip(":") for line in status.splitlines() if line.strip().endswith(":")
            and not line.startswith("\t")}


@pytest.mark.parametrize("path, old, new, stages", [
    ("src/notelm/report/labels.py", '"Fine-tuned"', '"Fine tuned"', {"report"}),             # a prose label
    ("src/notelm/config/report.py", "PNG resolution.", "PNG resolution (dpi).", {"report"}),  # a report-only param doc
    ("src/notelm/report/plotting.py", "fill: float | None = 0.1", "fill: float | None = 0.15", {"report"}),  # chart colours
    ("configs/models.yaml", "opt-350m:       {aliases: [opt]", "opt-350m:       {aliases: [opt, opt350]",
     {"base_model"}),                                                              # another model's row
])
def test_an_edit_makes_dvc_status_report_only_the_stages_that_use_it(repo, path, old, new, stages):
    file = repo / path
    original = file.read_text()
    assert old in original
    file.write_text(original.replace(old, new, 1))
    try:
        assert stale_stages(repo) == stages
        if path.startswith("configs/"):  # base_model re-runs, writes the same row record, and nothing follows
            out = sh("dvc", "repro", cwd=repo)
            assert [line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")] == ["base_model"]
    finally:
        file.write_text(original)
        sh("git", "checkout", "--", "dvc.lock", cwd=repo)
    assert "up to date" in sh("dvc", "status", cwd=repo)


def test_a_teammate_pulls_the_run_from_a_remote_and_has_nothing_to_reproduce(repo, tmp_path):
    remote = tmp_path / "remote"
    sh("dvc", "remote", "add", "-d", "team", str(remote), cwd=repo)
    sh("dvc", "push", cwd=repo)
    sh("git", "add", ".dvc/config", cwd=repo)
    sh("git", "commit", "-qm", "remote", cwd=repo)
    clone = tmp_path / "clone"
    sh("git", "clone", "-q", str(repo), str(clone), cwd=tmp_path)
    sh("dvc", "pull", cwd=clone)
    assert (clone / "models/finetuned/model.safetensors").is_file() and (clone / "generations/finetuned.jsonl").is_file()
    assert "Data and pipelines are up to date" in sh("dvc", "status", cwd=clone)
    assert "Running stage" not in sh("dvc", "repro", cwd=clone)
    assert sh("git", "status", "--porcelain", cwd=clone).strip() == ""


def test_exp_run_is_listed_beside_the_baseline(repo):
    sh("dvc", "exp", "run", "-n", "more-steps", "-S", "train.max_steps=6", cwd=repo)
    shown = sh("dvc", "exp", "show", "--no-pager", "--md", cwd=repo)
    assert "more-steps" in shown
    assert "finetuned.rougeL" in shown and "subject_overlap" in shown and "finetuned_vs_best_baseline" in shown


def test_the_study_grid_runs_with_a_tiny_model_standing_in(repo):
    """A preset of study/grid.yaml, its model a tiny stand-in for the hub row: `notelm grid --queue --offline`
    queues it, the queue runs it, and `notelm compare --study` puts its scores beside the study's figure."""
    study = repo / "study"
    study.mkdir(exist_ok=True)
    shutil.copy(REPO / "study/published.csv", study / "published.csv")
    grid = {"gpt2-5pct": {"model": "tiny", "column": "GPT2_5%", "set": {"data.fraction": 0.5, "train.max_steps": 2}},
            "qwen3-full": {"model": "qwen3", "column": "Qwen3-0.6B", "set": {"train.method": "full"}}}
    (study / "grid.yaml").write_text(yaml.safe_dump(grid))
    sh("git", "add", "study", cwd=repo)
    sh("git", "commit", "-qm", "study grid", cwd=repo)
    queued = sh(sys.executable, "-m", "notelm.cli", "grid", "--queue", "--offline", cwd=repo)
    assert "-n gpt2-5pct" in queued and "# qwen3-full: skipped" in queued
    sh("dvc", "queue", "start", "-j", "1", cwd=repo)
    deadline = time.time() + 600
    while "Queued" in (status := sh("dvc", "queue", "status", cwd=repo)) or "Running" in status:
        assert time.time() < deadline, status
        time.sleep(2)
    assert "Success" in status, status + sh("dvc", "queue", "logs", "gpt2-5pct", cwd=repo)
    tables = sh(sys.executable, "-m", "notelm.cli", "compare", "--study", cwd=repo)
    fine = tables[tables.index("### fine-tune"):tables.index("### all")]
    row = next(line for line in fine.splitlines() if line.startswith("| rouge1 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    header = [c.strip() for c in fine.splitlines()[2].strip("|").split("|")]
    gpt2 = cells[header.index("GPT2_5%")]
    assert gpt2.startswith("0.813 / 0.") and not gpt2.endswith("/ –"), gpt2  # the study's, ours, ours its way
    assert cells[header.index("Qwen3-0.6B")] == f"{0.1485:.3f} / – / –"  # the study's (published.csv) only
