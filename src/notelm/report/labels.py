"""Prose about the metrics' names: how a variant, a metric and the study's scoring are called in the report,
compare, the app and the README. Only those import it (not the pipeline stages that compute the numbers), so
rewording a label re-runs the report and nothing before it.
"""

from __future__ import annotations

VARIANT_NAMES = {"pretrained": "Pre-trained", "finetuned": "Fine-tuned"}


def system_name(name: str) -> str:
    """How a system is named in tables: Pre-trained / Fine-tuned, or the baseline's name in code style."""
    return VARIANT_NAMES.get(name, f"`{name}`")


LABELS = {
    "rouge1": "rouge1", "rouge2": "rouge2", "rougeL": "rougeL", "rougeLsum": "rougeLsum",
    "bertscore_precision": "Precision", "bertscore_recall": "Recall", "bertscore_f1": "F1",
    "bertscore_precision_rescaled": "Precision (rescaled)", "bertscore_recall_rescaled": "Recall (rescaled)",
    "bertscore_f1_rescaled": "F1 (rescaled)", "bits_per_byte": "Bits per byte", "word_perplexity": "Perplexity per word",
    "token_perplexity": "Perplexity per token",
    "facts": "Facts per note", "facts_matched": "Matched per note", "fact_errors": "Errors per note",
    "matched_fact_rate": "Matched", "contradicted_fact_rate": "Contradicted",
    "carried_fact_rate": "Carried (chart only)", "new_value_fact_rate": "New value", "unsupported_fact_rate":
    "Unsupported", "unsupported_negative_fact_rate": "Unsupported negatives", "invented_fact_rate": "Invented",
    "fact_error_rate": "Fact errors",
}
NAMES = {  # a metric named on its own, in prose
    "rouge1": "ROUGE-1", "rouge2": "ROUGE-2", "rougeL": "ROUGE-L", "rougeLsum": "ROUGE-Lsum",
    "bertscore_precision": "BERTScore P", "bertscore_recall": "BERTScore R", "bertscore_f1": "BERTScore F1",
    "bits_per_byte": "bits per byte", "word_perplexity": "per-word perplexity", "token_perplexity": "per-token perplexity",
    "facts": "facts per note", "facts_matched": "matched facts per note", "fact_errors": "fact errors per note",
    "matched_fact_rate": "matched facts", "contradicted_fact_rate": "contradicted facts",
    "carried_fact_rate": "carried facts", "new_value_fact_rate": "new values", "unsupported_fact_rate":
    "unsupported facts", "unsupported_negative_fact_rate": "unsupported negatives", "invented_fact_rate":
    "invented facts", "fact_error_rate": "fact errors",
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
    "facts": "clinical facts (vitals, oxygen, drips and doses, lines, findings) a continuation states, per note",
    "facts_matched": "facts written that the note's real rest states, per note",
    "fact_errors": "contradicted + new values + unsupported facts, per note (lower is better)",
    "matched_fact_rate": "share of facts written that the note's real rest states (a value inside a stated range or "
                         "decade agrees: `HR 88` and `HR 70-89`)",
    "contradicted_fact_rate": "share the rest states otherwise: same vital, drug or line, other value (lower is better)",
    "carried_fact_rate": "share that only the chart (prompt, earlier notes) states: carried forward, maybe stale",
    "new_value_fact_rate": "share the rest is silent on and the chart states otherwise: a new value (lower is better)",
    "unsupported_fact_rate": "share about a subject neither the rest nor the chart mentions (lower is better)",
    "unsupported_negative_fact_rate": "share of negatives nobody states (`no edema`): unverifiable, kept apart",
    "invented_fact_rate": "new values + unsupported facts, over facts written (lower is better)",
    "fact_error_rate": "contradicted + new values + unsupported, over facts written (lower is better)",
}
VERDICT_DOC = ("`better` / `worse`: the paired interval lies on one side of 0, read in the metric's better direction "
               "(lower for bits per byte, perplexity and the fact-error rates); `higher` / `lower` for metrics "
               "with no better side (facts per note, carried facts, unsupported negatives)")

READS = {"prompt": "the scored note's prompt", "chart": "the patient's earlier notes of the test split",
         "train": "the train split"}  # the inputs of names.BASELINE_READS, named
BASELINE_DOC = {  # what each model-free system of names.BASELINE_NAMES stands for, in a line
    "chance": "the target of a random train note (prompt ignored)",
    "copy_forward": "the target of the same patient's most recent earlier test note (its words after its own cut)",
    "aligned_copy": ("the words that follow, in the same patient's most recent earlier test note, the place where "
                     "this prompt's end falls when the two are aligned word by word (the chart, copied as well as a "
                     "rule can)"),
    "prompt_tail": "the prompt's last words, as many as the reference has",
    "retrieval": "the target of the train note whose prompt is nearest (TF-IDF cosine)",
    "copy_last_sentence": "the prompt's last sentence",
}
