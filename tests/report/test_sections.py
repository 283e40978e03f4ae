"""report/sections.py: each section of the report from an in-memory `Inputs`, no file read or written.

The whole report over files on disk (every section, charts, reruns) is tested with the stage in tests/stages/test_report.py.
"""

from __future__ import annotations

from types import SimpleNamespace

from notelm.config.names import CLAIM, HEADLINE, SUMMARY_METRICS
from notelm.config.report import ReportParams
from notelm.report.sections import (
    Inputs,
    claim_lines,
    leakage_flags,
    redundancy_lines,
    render_markdown,
    section_completions,
    section_lengths,
    system_name,
)

PATHS = SimpleNamespace(data_metrics="d.json", leakage="l.json", per_example="p.csv", generations=("g.jsonl",),
                        live="dvclive", memorization="m.json", suggest="s.json")


def scores(base: float) -> dict[str, float]:
    return {k: v for key in HEADLINE for k, v in ((key, base), (f"{key}_ci_low", base - 0.02),
                                                  (f"{key}_ci_high", base + 0.02))}


def claim(low: float, high: float) -> dict[str, dict]:
    block = {}
    for key in SUMMARY_METRICS:
        verdict = "better" if low > 0 else "worse" if high < 0 else "not distinguishable"
        block.update({key: (low + high) / 2, f"{key}_ci_low": low, f"{key}_ci_high": high,
                      f"{key}_verdict": verdict, f"{key}_baseline": "copy_forward"})
    return {"differences": {CLAIM: block}}


def test_systems_are_named_as_in_the_study_and_baselines_in_code_style():
    assert [system_name(n) for n in ("pretrained", "finetuned", "chance")] == ["Pre-trained", "Fine-tuned", "`chance`"]


def test_claim_lines_follow_the_paired_interval():
    assert "**better** than the best baseline, `copy_forward`: +0.2000 [+0.1000, +0.3000]" in claim_lines(claim(0.1, 0.3))[0]
    assert "**not distinguishable**" in claim_lines(claim(-0.1, 0.1))[0]
    assert claim_lines(claim(-0.3, -0.1))[0].startswith("- ⚠️ **WARNING: on ROUGE-L the fine-tuned model is worse")
    assert claim_lines({}) == []


def test_leakage_flags_only_shared_patients_or_exact_duplicates():
    assert leakage_flags(None) == [] and leakage_flags({"subject_overlap": 0, "ngram13_containment": 0.3}) == []
    [flag] = leakage_flags({"subject_overlap": 2, "exact_dup_test_in_train": 1})
    assert "(subject_overlap=2, exact_dup_test_in_train=1)" in flag


def test_lengths_and_redundancy_tables():
    lengths = {"cap_words": None, "reference_mean_words": 40.0,
               "finetuned": {"mean_words": 50.0, "mean_words_scored": 48.0, "short": 3,
                             "short_by": {"budget": 1, "eos": 2, "word_cap": 0}},
               "copy_forward": {"mean_words": 10.0, "mean_words_scored": 10.0, "short": 4}}
    md = "\n".join(section_lengths(Inputs(eval={"lengths": lengths})))
    assert "cut at no words" in md and "| Fine-tuned | 50.0 | 48.0 | 3 | budget 1, eos 2 |" in md
    assert "| `copy_forward` | 10.0 | 10.0 | 4 | – |" in md
    assert redundancy_lines({}) == []
    lines = redundancy_lines({"admission": {"pairs": 3, "rouge1": 0.5, "rougeL": 0.25}, "patient": {"pairs": 0}})
    assert "| consecutive notes of the same admission | 3 | 0.5000 | 0.2500 |" in lines
    assert not any("same patient" in line for line in lines)


def test_completions_escape_and_cut_the_texts():
    gens = {"finetuned": [{"note_id": "n_1", "prompt": "a " * 50 + "*end*", "reference": "ref " * 30,
                           "completion": "x|y"}]}
    inp = Inputs(eval={}, generations=gens, per_example=[{"note_id": "n_1", "variant": "finetuned", "rougeL": 0.5}])
    md = "\n".join(section_completions(inp, ReportParams(n_examples_shown=1, max_chars=12, prompt_tail_chars=8),
                                       PATHS))
    assert "### Example 1 (note `n\\_1`)" in md and "**Prompt (end):** … a \\*end\\*" in md
    assert "| Reference | ref ref ref …" in md and "| Fine-tuned | x\\|y | 0.5000 | – |" in md


def test_a_report_from_the_eval_metrics_alone_says_what_is_missing():
    ev = {"models": {"pretrained": scores(0.2), "finetuned": scores(0.5)}, **claim(0.1, 0.3)}
    md = render_markdown(Inputs(eval=ev), ReportParams(), PATHS, {})
    assert md.startswith("# NoteLM report\n") and md.endswith("\n") and not md.endswith("\n\n")
    assert "| rouge1 | 0.2000 [0.1800, 0.2200] | 0.5000 [0.4800, 0.5200] |" in md
    assert "Not available: `l.json` not found" in md and "Not available: `d.json` not found" in md
    assert "Not available: `m.json` not found (run `dvc repro memorize`)" in md
    assert "no dvclive output in `dvclive/`" in md and "no generations in `g.jsonl`" in md
    assert "Score distributions not available: `p.csv` not found." in md and "![" not in md
    assert render_markdown(Inputs(eval=ev), ReportParams(), PATHS, {}) == md


def test_the_memorization_section_is_made_from_its_numbers():
    block = {"pairs": 4, "exact_train": 0.5, "exact_test": 0.0, "exact_gap": 0.5, "exact_gap_ci_low": 0.25,
             "exact_gap_ci_high": 0.75, "exact_gap_upper": 0.7, "exact_gap_verdict": "higher",
             "canary_exposure_max": 9.5, "canary_exposure_mean": 7.0, "control_exposure_mean": 1.0,
             "canary_gap": 6.0, "canary_gap_ci_low": 5.0, "canary_gap_ci_high": 7.0, "canary_gap_upper": 6.8,
             "canaries": 16, "canary_exposure_limit": 10.0, "identifiers": {"date": 2, "name": 0, "total": 2},
             "canary_leaks": {"continuations": 46, "template": 3, "secret": 1}}
    detail = {"finetuned": block, "pretrained": {}, "references": {"identifiers": {"total": 0}, "notes": 8},
              "gate": "fail", "problems": {"finetuned": ["finetuned.exact_gap_upper = 0.7 > 0.1 allowed"]},
              "settings": {"prefix_tokens": 32, "suffix_tokens": 32, "canary_candidates": 1023, "sample": 4,
                           "positions": 4},
              "matching": {"pairs": 4, "offsets": {"0": 3, "64": 1}, "base_suffix_nll_train": 5.1,
                           "base_suffix_nll_test": 5.2, "train_windows_available": 9, "test_windows_available": 8},
              "power": {"finetuned.exact_gap_upper": {"limit": 0.1, "half_width": 0.25, "narrower_than_limit": False}}}
    ev = {"models": {"pretrained": scores(0.2), "finetuned": scores(0.5)}, **claim(0.1, 0.3)}
    md = render_markdown(Inputs(eval=ev, memorization=detail), ReportParams(), PATHS, {})
    assert ("| exact reproduction (share of windows), train − test [95 % CI]; one-sided upper bound | – | "
            "+0.500 [+0.250, +0.750] higher; 0.700 |") in md
    assert "| canary exposure, planted − controls [95 % CI]; upper bound | – | +6.00 [+5.00, +7.00]; upper bound 6.80 |" in md
    assert "| test continuations writing the canary template's words / a secret | – | 3 / 1 of 46 |" in md
    assert "| identifier-like strings in its continuations | 0 | 2 (date 2) |" in md
    assert "pairs by offset 0: 3, 64: 1" in md and "each of 16 planted canaries" in md
    assert "exact reproduction is higher on its train notes than on unseen test notes" in md
    assert "`finetuned.exact_gap_upper` ±0.25 against 0.1 (**wider than its limit**)" in md
    assert "Gate (`memorize.fail_on`): **fail**: finetuned.exact_gap_upper = 0.7 > 0.1 allowed." in md


def test_the_suggest_section_states_each_models_verdict_against_the_best_proposer():
    def block(ks):
        return {"keystroke_savings": ks, "keystroke_savings_ci_low": ks - 0.05, "keystroke_savings_ci_high": ks + 0.05,
                "ceiling": 0.9, "ceiling_ci_low": 0.88, "ceiling_ci_high": 0.92, "accept_rate": None}
    metrics = {"pretrained": block(0.0), "finetuned": block(0.5), "chart_copy": block(0.3), "ngram": block(0.55),
               "finetuned_vs_best_proposer": {"keystroke_savings": -0.05, "keystroke_savings_ci_low": -0.1,
                                              "keystroke_savings_ci_high": 0.01, "keystroke_savings_baseline": "ngram",
                                              "keystroke_savings_verdict": "not distinguishable"},
               "n_examples": 46, "clusters": 22, "max_words": 5}
    ev = {"models": {"pretrained": scores(0.2), "finetuned": scores(0.5)}, **claim(0.1, 0.3)}
    md = render_markdown(Inputs(eval=ev, suggest=metrics), ReportParams(), PATHS, {})
    assert "| keystroke savings | 0.000 [-0.050, 0.050] | 0.500 [0.450, 0.550] | 0.300 [0.250, 0.350] |" in md
    assert "| accept rate | – | – | – | – |" in md
    assert "- Fine-tuned is **not distinguishable** in keystrokes saved from `ngram`, the best model-free proposer: " \
           "-0.050 [-0.100, +0.010] of the characters typed." in md
    assert "Not available: `s.json` not found" in render_markdown(Inputs(eval=ev), ReportParams(), PATHS, {})
