"""Prose about the metrics' names: how a variant, a metric and the study's scoring are called in the report,
compare, the app and the README. Only those import it (not the pipeline stages that compute the numbers), so
rewording a label re-runs the report and nothing before it.
"""

from __future__ import annotations

VARIANT_NAMES = {"pretrained": "Pre-trained", "finetuned": "Fine-tuned"}

LABELS = {
    "rouge1": "rouge1", "rouge2": "rouge2", "rougeL": "rougeL", "rougeLsum": "rougeLsum",
    "bertscore_precision": "Precision", "bertscore_recall": "Recall", "bertscore_f1": "F1",
    "bertscore_precision_rescaled": "Precision (rescaled)", "bertscore_recall_rescaled": "Recall (rescaled)",
    "bertscore_f1_rescaled": "F1 (rescaled)", "bits_per_byte": "Bits per byte", "word_perplexity": "Perplexity per word",
    "token_perplexity": "Perplexity per token",
}
NAMES = {  # a metric named on its own, in prose
    "rouge1": "ROUGE-1", "rouge2": "ROUGE-2", "rougeL": "ROUGE-L", "rougeLsum": "ROUGE-Lsum",
    "bertscore_precision": "BERTScore P", "bertscore_recall": "BERTScore R", "bertscore_f1": "BERTScore F1",
    "bits_per_byte": "bits per byte", "word_perplexity": "per-word perplexity", "token_perplexity": "per-token perplexity",
}
# One line per metric, as in the original study's tables.
MEANINGS = {
    "rouge1": "unigram overlap: share of single words in common",
    "rouge2": "bigram overlap: share of word pairs in common",
    "rougeL": "longest common subsequence: shared words in the same order",
    "rougeLsum": "longest common subsequence per sentence (summary-level)",
    "bertscore_precision": "generated tokens' similarity to the reference (is what was written right?)",
    "bertscore_recall": "reference tokens' similarity to the generation (is the reference covered?)",
    "bertscore_f1": "harmonic mean of precision and recall (overall semantic match)",
    "bertscore_precision_rescaled": "precision rescaled: 0 = no closer than an unrelated note, 1 = identical",
    "bertscore_recall_rescaled": "recall rescaled: 0 = no closer than an unrelated note, 1 = identical",
    "bertscore_f1_rescaled": "F1 rescaled: 0 = no closer than an unrelated note, 1 = identical",
    "bits_per_byte": "NLL of the reference in bits per UTF-8 byte: comparable across tokenizers (lower is better)",
    "word_perplexity": "perplexity per whitespace word of the reference: comparable across tokenizers (lower is better)",
    "token_perplexity": "perplexity per token of the model's own tokenizer: not comparable across models",
}

BASELINE_DOC = {  # what each model-free system of names.BASELINE_NAMES stands for, in a line
    "chance": "the target of a random train note (prompt ignored)",
    "copy_forward": "the same patient's most recent earlier test note, cut where this one is (what the chart holds)",
    "prompt_tail": "the prompt's last words, as many as the reference has",
    "retrieval": "the target of the train note whose prompt is nearest (TF-IDF cosine)",
    "copy_last_sentence": "the prompt's last sentence",
}
