"""report/facts.py: what each system reads, the fact-fidelity table with its claim, and templating."""

from __future__ import annotations

from notelm.config.names import CLAIM
from notelm.report.facts import reads_table, section_facts, section_templating
from notelm.report.sections import Inputs

FACTS = {"facts": 3.0, "facts_ci_low": 2.5, "facts_ci_high": 3.5, "invented_fact_rate": 0.4,
         "invented_fact_rate_ci_low": 0.3, "invented_fact_rate_ci_high": 0.5, "fact_error_rate": 0.6,
         "fact_error_rate_ci_low": 0.5, "fact_error_rate_ci_high": 0.7}
EVAL = {
    "models": {"pretrained": {"facts": 0.0, "facts_ci_low": 0.0, "facts_ci_high": 0.0}, "finetuned": FACTS},
    "baselines": {"aligned_copy": {**FACTS, "invented_fact_rate": 0.1}, "prompt_tail": {"facts": 1.0}},
    "differences": {CLAIM: {"invented_fact_rate": 0.3, "invented_fact_rate_ci_low": 0.2,
                            "invented_fact_rate_ci_high": 0.4, "invented_fact_rate_verdict": "worse",
                            "invented_fact_rate_baseline": "aligned_copy"}},
    "facts": {"reference_per_note": 4.2, "chart_per_note": 9.5},
    "templating": {"pairs": 12, "reference": 0.27, "finetuned": 0.55, "aligned_copy": 0.3},
}


def test_the_reads_table_marks_what_each_system_may_read():
    md = "\n".join(reads_table(EVAL, history=0))
    assert "| `aligned_copy` | ✓ | ✓ | ✓ |" in md and "| `prompt_tail` | ✓ |  |  |" in md
    assert "| Fine-tuned | ✓ |  | ✓ |" in md and "| Pre-trained | ✓ |  |  |" in md
    assert "| Fine-tuned | ✓ | ✓ | ✓ |" in "\n".join(reads_table(EVAL, history=1))  # the chart in its prompt


def test_the_fact_section_shows_rates_the_claim_and_what_is_missed():
    md = "\n".join(section_facts(Inputs(eval=EVAL)))
    assert "4.2 facts per note" in md and "What the extractor misses:" in md
    assert "| Fine-tuned | 3.0000 [2.5000, 3.5000] |" in md and "| Pre-trained | 0.0000 [0.0000, 0.0000] | – |" in md
    assert "| Invented | +0.3000 [+0.2000, +0.4000] | worse | `aligned_copy` |" in md
    assert "Not available" in "\n".join(section_facts(Inputs(eval={"models": {}})))


def test_templating_shows_the_references_beside_the_systems_and_the_repeated_ngrams():
    gens = {"finetuned": [{"reference": f"HR {60 + i} SR today", "completion": "BP 125-149/57-70. SpO2 94-99% on RA"}
                          for i in range(3)]}
    md = "\n".join(section_templating(Inputs(eval=EVAL, generations=gens)))
    assert "| References | 0.2700 |" in md and "| Fine-tuned | 0.5500 |" in md and "12 pairs" in md
    assert "BP 125-149/57-70. SpO2 94-99% (3)" in md and "none repeated" in md  # references share no 4-gram
