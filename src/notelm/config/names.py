"""The names the metrics files are made of, stated once: variants, metric keys, difference keys, the shape of
eval.json and of leakage.json, and the marks inside a prepared prompt.

Imported by the stages that write or read those files (prepare, audit, generate, evaluate, report) and by the
consumers (compare, app, readme). Prose about the names (labels, meanings) lives in report/labels.py, which no
pipeline stage but report imports, so rewording a label re-runs only the report.
"""

from __future__ import annotations

from typing import Any

# ------------------------------------------------------------------------------------------ examples
# Examples (data/prepared/*.jsonl): one JSON object a line with note_id, subject_id, hadm_id, category,
# chartdate, charttime, prompt, target (prompt + " " + target is the cleaned note up to the target cap); test
# rows also `scored` (false: context only, never generated or scored) and `rest` (the whole note after the
# prompt, uncapped: what the study scored against, and the chart's copy of this note for later ones). With data.history, a prompt starts
# with the patient's earlier notes: "[PREVIOUS NOTE] <older> [PREVIOUS NOTE] <newer> [NOTE] <this note's start>".
HISTORY_MARK, NOTE_MARK = "[PREVIOUS NOTE]", "[NOTE]"


def note_part(prompt: str) -> str:
    """The prompt's own note: what follows its last NOTE_MARK (the whole prompt without history)."""
    return prompt.rsplit(NOTE_MARK, 1)[-1].strip()


def scored(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The test rows that are generated and scored (rows without `scored` count as scored)."""
    return [r for r in rows if r.get("scored", True)]


# ------------------------------------------------------------------------------------------ metrics
VARIANTS = ("pretrained", "finetuned")  # the model variants every run generates and scores
ROUGE_KEYS = ("rouge1", "rouge2", "rougeL", "rougeLsum")
BERTSCORE_KEYS = ("bertscore_precision", "bertscore_recall", "bertscore_f1")
HEADLINE = ROUGE_KEYS + BERTSCORE_KEYS
LIKELIHOOD = ("bits_per_byte", "word_perplexity", "token_perplexity")  # a model's likelihood of the reference
CI_SUFFIXES = ("_ci_low", "_ci_high")
# Fact fidelity (src/notelm/evaluation/facts.py): per example, the facts a continuation writes (FACTS), how many fall in
# each class (`facts_<class>`) and its errors (FACT_ERRORS); each rate is a ratio of sums over notes: those classes'
# facts / facts written. Negatives nobody states (`no edema`) are kept apart: they are neither errors nor support.
FACT_CLASSES = ("matched", "contradicted", "carried", "new_value", "unsupported", "unsupported_negative")
FACTS = "facts"
FACT_ERRORS = "fact_errors"  # per note: contradicted + new_value + unsupported
FACT_COUNTS = (FACTS, *(f"facts_{c}" for c in FACT_CLASSES), FACT_ERRORS)
FACT_RATES: dict[str, tuple[str, ...]] = {
    "matched_fact_rate": ("matched",), "contradicted_fact_rate": ("contradicted",),
    "carried_fact_rate": ("carried",), "new_value_fact_rate": ("new_value",), "unsupported_fact_rate": ("unsupported",),
    "unsupported_negative_fact_rate": ("unsupported_negative",),
    "invented_fact_rate": ("new_value", "unsupported"),
    "fact_error_rate": ("contradicted", "new_value", "unsupported"),
}
FACT_PER_NOTE = (FACTS, "facts_matched", FACT_ERRORS)  # counts per note, beside the rates
FACT_METRICS = (*FACT_PER_NOTE, *FACT_RATES)
SUMMARY_METRICS = ("rougeL", "bertscore_f1", "invented_fact_rate", "fact_error_rate")  # the headline; the claim
# Which way is better: higher unless named here; `neutral` metrics have no better side (verdict: higher/lower).
LOWER_IS_BETTER = frozenset({*LIKELIHOOD, "contradicted_fact_rate", "new_value_fact_rate", "unsupported_fact_rate",
                             "invented_fact_rate", "fact_error_rate", FACT_ERRORS})
NEUTRAL = frozenset({FACTS, "carried_fact_rate", "unsupported_negative_fact_rate"})


def direction(metric: str) -> str:
    """`higher`, `lower` (is better) or `neutral`, for a metric key of eval.json."""
    return "lower" if metric in LOWER_IS_BETTER else "neutral" if metric in NEUTRAL else "higher"
# The model-free systems evaluate can score (src/notelm/evaluation/baselines.py builds them; the first five are the defaults)
BASELINE_NAMES = ("chance", "copy_forward", "aligned_copy", "prompt_tail", "retrieval", "copy_last_sentence")
# What each may read: the scored note's `prompt`, the patient's earlier notes of the test split (`chart`), the
# `train` split (chance and the chart baselines' fallback). evaluation/baselines.py builds each from these inputs only.
BASELINE_READS: dict[str, tuple[str, ...]] = {
    "chance": ("train",), "copy_forward": ("chart", "train"), "aligned_copy": ("prompt", "chart", "train"),
    "prompt_tail": ("prompt",), "retrieval": ("prompt", "train"), "copy_last_sentence": ("prompt",),
}

# ------------------------------------------------------------------------------------------ eval.json
# metrics/detail/eval.json:
# {"models": {<variant>: {metric, metric_ci_low, metric_ci_high, ..., bits_per_byte, word_perplexity, ...}},
#  "baselines": {<name>: {...}},                        model-free continuations, same metrics
#  "differences": {difference_key(finetuned, pretrained | <baseline> | BEST_BASELINE),
#                  difference_key(chart_aware, BEST_BASELINE | finetuned) when the chart-aware system is scored:
#                  {metric, metric_ci_low, metric_ci_high, metric_verdict[, metric_baseline]}},   paired
#  "note_level": {<system>: {metric_ci_low, metric_ci_high}},  intervals with notes as independent (comparison)
#  "study_way": {"why": ..., "systems": {<system> | "empty": {metric}}},   the study's scoring, a diagnostic
#  "lengths": {cap_words, reference_mean_words, <system>: {mean_words, mean_words_scored, short[, short_by]}},
#  "templating": {pairs, reference, <system>: cross-patient ROUGE-L}, "facts": {reference_per_note, chart_per_note},
#  "bootstrap": {unit, clusters, samples, seed, confidence, warning}, "bertscore": {...},
#  "n_examples": int, "chart_fallbacks": int}
# Fact counts and rates (FACT_METRICS) sit in each system's block like the other metrics.
# metrics/eval.json (the headline): `headline(detail)`.
MODELS, BASELINES, DIFFERENCES = "models", "baselines", "differences"
BEST_BASELINE = "best_baseline"


def difference_key(first: str, second: str) -> str:
    """The key of the paired difference first − second in eval.json's `differences` (e.g. finetuned-pretrained)."""
    return f"{first}-{second}"


CLAIM = difference_key(VARIANTS[1], BEST_BASELINE)  # the difference a claim about the fine-tuned model rests on
CHART_AWARE = "chart_aware"  # the chart-aware system: a generations file of evaluate's and a system of suggest's
EVAL_CLAIMANTS = (VARIANTS[1], CHART_AWARE)  # the systems claimed against the best baseline in eval.json
CHART_AWARE_CLAIM = difference_key(CHART_AWARE, BEST_BASELINE)
CHART_AWARE_GAIN = difference_key(CHART_AWARE, VARIANTS[1])  # what choosing the chart's words changes
DIFF = difference_key(*reversed(VARIANTS))  # finetuned-pretrained


def eval_systems(metrics: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """The scored systems of a detail eval.json, as (name, kind, block): kind is `model` (pretrained and
    finetuned first, then other variants by name) or `baseline`. Differences are not systems."""
    order = {v: i for i, v in enumerate(VARIANTS)}
    models = metrics.get(MODELS) or {}
    systems = [(name, "model", models[name]) for name in sorted(models, key=lambda k: (order.get(k, len(order)), k))]
    return systems + [(name, "baseline", block) for name, block in (metrics.get(BASELINES) or {}).items()]


def eval_difference(metrics: dict[str, Any], name: str = DIFF) -> dict[str, Any]:
    """A paired difference of a detail eval.json (`finetuned-pretrained`, `finetuned-best_baseline`, ...); {} if absent."""
    return (metrics.get(DIFFERENCES) or {}).get(name) or {}


# A headline file holds what comparing runs needs — each system's main scores and each claim with its verdict —
# so `dvc exp show` stays readable; interval bounds and the rest stay in the detail file beside it
# (`dvc metrics diff --targets metrics/detail/<file>`).
CLAIM_FIELDS = ("", "_verdict", "_baseline")  # a claim in a headline: the paired difference, its verdict, against what


def headline(detail: dict[str, Any]) -> dict[str, Any]:
    """What `dvc exp show` lists from a detail eval.json: per system the summary metrics (and a model's bits per
    byte), the claims (fine-tuned and chart-aware − best baseline: difference, verdict, baseline) and fine-tuned −
    pre-trained (difference, verdict). Intervals stay in the detail."""
    keep = (*SUMMARY_METRICS, "bits_per_byte")
    out: dict[str, Any] = {"n_examples": detail.get("n_examples"), "clusters": detail["bootstrap"]["clusters"],
                           "few_clusters": bool(detail["bootstrap"].get("warning"))}
    for name, kind, block in eval_systems(detail):
        where = out if kind == "model" else out.setdefault(BASELINES, {})
        where[name] = {k: block[k] for k in keep if k in block}
    for name in (CLAIM, CHART_AWARE_CLAIM, DIFF):
        diff = eval_difference(detail, name)
        fields = [f"{m}{s}" for m in SUMMARY_METRICS for s in CLAIM_FIELDS]
        if diff:
            out[name.replace("-", "_vs_")] = {k: diff[k] for k in fields if k in diff}
    return out


# ------------------------------------------------------------------------------------------ leakage.json
# Count metrics (in their test form) -> (denominator key, what is counted, for messages); each also has a
# `<key>_rate`. `ngram<N>_containment` is a share. The same keys for val, with "test" read as "val", sit
# under VAL_BLOCK.
LEAKAGE_COUNTS: dict[str, tuple[str, str]] = {
    "subject_overlap": ("n_test_subjects", "test subjects also have notes in train"),
    "admission_overlap": ("n_test_admissions", "test admissions also appear in train"),
    "exact_dup_test_in_train": ("n_test", "test notes have an exact copy in train"),
    "target_in_train": ("n_test", "test targets occur verbatim inside a train note"),
    "near_dup_test_in_train": ("n_test", "test notes have a near-duplicate in train (Jaccard >= {thr})"),
}
VAL_BLOCK = "val_vs_train"


def leakage_metric_names(ngram: int = 13) -> list[str]:
    """The leakage metrics `audit.fail_on` may name: every key of leakage.json but the `n_*` counts."""
    test = [k for c in LEAKAGE_COUNTS for k in (c, f"{c}_rate")] + [f"ngram{ngram}_containment"]
    return test + [f"{VAL_BLOCK}.{k.replace('test', 'val')}" for k in test]


# ------------------------------------------------------------------------------------------ memorization.json
# Per model variant (VARIANTS): each extraction measure for train notes, test notes, and train − test with its
# patient-clustered interval and verdict (`higher`: the model gives train notes back more than it writes unseen
# ones); canary exposure (bits) of the planted canaries and the never-planted controls; identifier-like strings in
# every continuation the model wrote (notelm.privacy.identifiers). `references.identifiers` counts them in the test
# references (what the de-identified input itself holds); `gate` says whether memorize.fail_on passed.
EXTRACTION = ("exact", "lcs", "rougeL")  # all m tokens reproduced; longest common token run; ROUGE-L of the text
EXTRACTION_SIDES = ("train", "test", "gap", "gap_upper")  # gap_upper: the one-sided 95 % bound the gate reads
CANARY_KEYS = ("canary_exposure_max", "canary_exposure_mean", "control_exposure_mean", "canary_gap", "canary_gap_upper")
IDENTIFIERS = "identifiers"
REFERENCES = "references"
GATE = "gate"


MEMORIZATION_HEADLINE = ("exact_gap", "exact_gap_upper", "lcs_gap", "lcs_gap_upper", "rougeL_gap", "canary_gap",
                         "canary_gap_upper", IDENTIFIERS)


def memorization_headline(detail: dict[str, Any]) -> dict[str, Any]:
    """What `dvc exp show` lists from the detail memorization.json: per variant what the gate reads by default
    (train − test extraction and its upper bound, planted − control canary exposure and its upper bound,
    identifier-like strings), the test references' identifier count, and the gate."""
    out: dict[str, Any] = {v: {k: _total(detail[v][k]) for k in MEMORIZATION_HEADLINE if k in detail[v]}
                           for v in VARIANTS if v in detail}
    return {**out, REFERENCES: {IDENTIFIERS: _total(detail[REFERENCES][IDENTIFIERS])}, GATE: detail[GATE]}


def _total(value: Any) -> Any:
    """A number as the headline shows it: an identifier count's total, other numbers rounded to 6 places."""
    return value["total"] if isinstance(value, dict) else round(value, 6) if isinstance(value, float) else value


def memorization_metric_names() -> list[str]:
    """The keys `memorize.fail_on` may name: `<variant>.<metric>` for every number of a variant's block."""
    per_variant = [f"{m}_{side}" for m in EXTRACTION for side in EXTRACTION_SIDES] + [*CANARY_KEYS, IDENTIFIERS]
    return [f"{v}.{k}" for v in VARIANTS for k in per_variant]


# ------------------------------------------------------------------------------------------ suggest.json
# Per system (the model VARIANTS, the model-free PROPOSERS, the CHART_AWARE system and its ORACLE) the metrics of
# notelm.evaluation.keystrokes.RATIOS with patient-clustered intervals; per model and for CHART_AWARE
# `<system>_vs_best_proposer`: its keystroke savings − the best proposer's, paired, with the proposer's name and a
# verdict; CHOICE: the chart-aware threshold chosen on validation notes, and how (notelm.evaluation.choose).
PROPOSERS = ("chart_copy", "ngram")
BEST_PROPOSER = "best_proposer"
ORACLE = "chart_aware_oracle"
CHOICE = "chart_aware_choice"
CLAIMANTS = (*VARIANTS, CHART_AWARE)  # the systems claimed against the best proposer


def suggest_headline(detail: dict[str, Any]) -> dict[str, Any]:
    """What `dvc exp show` lists from the detail suggest.json: per system keystroke savings and accept rate, per
    model its keystroke savings − the best proposer's (difference, verdict, proposer)."""
    out: dict[str, Any] = {k: detail[k] for k in ("n_examples", "clusters") if k in detail}
    for system, block in detail.items():
        if system.endswith(f"_vs_{BEST_PROPOSER}"):
            out[system] = {f"keystroke_savings{s}": block[f"keystroke_savings{s}"] for s in CLAIM_FIELDS}
        elif system == CHOICE:
            out[system] = {"threshold": block["threshold"]}
        elif isinstance(block, dict):
            out[system] = {k: block[k] for k in ("keystroke_savings", "accept_rate") if k in block}
    return out
