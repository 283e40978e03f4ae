"""NoteLM continuation scores as a Hugging Face `evaluate` metric, loadable offline from this repository:

    import evaluate
    metric = evaluate.load("hf_metrics/notelm_continuation")
    metric.compute(predictions=["Lungs clear bilaterally."], references=["Lungs clear, on 2L NC."])

Scores the continuation only — never prompt + continuation — with the same functions the evaluate stage
uses (src/notelm/evaluation/rouge.py, src/notelm/evaluation/bertscore.py): ROUGE-1/2/L/Lsum F1 with stemming and sentence-split rougeLsum, and
BERTScore P/R/F1 with the bundled all-MiniLM-L6-v2 at layer 6 (or `bertscore_model`, `bertscore_layer`).
Returns the mean of each over the pairs; the evaluate stage adds baselines, patient-clustered intervals and
paired differences, which need more than (prediction, reference) pairs.
"""

import dataclasses

import datasets
import evaluate

from notelm.config.evaluate import EvaluateParams
from notelm.config.names import HEADLINE
from notelm.evaluation.bertscore import bertscore_scores
from notelm.evaluation.rouge import rouge_scores

_KWARGS = """
Args:
    predictions: list of continuations (str).
    references: list of the real continuations (str), one per prediction.
    bertscore_model: encoder source (default: the bundled MiniLM; a local HF folder or a hub id).
    bertscore_layer: the encoder layer whose embeddings are matched (default 6).
Returns:
    rouge1, rouge2, rougeL, rougeLsum, bertscore_precision, bertscore_recall, bertscore_f1: means over the pairs.
"""


@evaluate.utils.file_utils.add_start_docstrings(__doc__, _KWARGS)
class NotelmContinuation(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=__doc__, citation="", inputs_description=_KWARGS,
            features=datasets.Features({"predictions": datasets.Value("string"),
                                        "references": datasets.Value("string")}),
        )

    def _compute(self, predictions, references, bertscore_model=None, bertscore_layer=None):
        defaults = EvaluateParams()
        cfg = dataclasses.replace(defaults, bertscore_model=bertscore_model or defaults.bertscore_model,
                                  bertscore_layer=bertscore_layer if bertscore_layer is not None
                                  else defaults.bertscore_layer)
        scores = {**rouge_scores(predictions, references), **bertscore_scores(predictions, references, cfg)}
        return {k: float(scores[k].mean()) for k in HEADLINE}
