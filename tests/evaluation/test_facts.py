"""The fact extractor on hand-written MIMIC-style lines (CareVue and MetaVision), and the sorting of a
completion's facts against its reference and its chart."""

from __future__ import annotations

import pytest

from notelm.evaluation.facts import Fidelity, classify, extract

LINES = [  # (a line as nurses write it, facts it must give, facts it must not give)
    ("CV: HR 75-93 SR, no VEA noted. BP 123-148/47-60.",
     {("HR", "75-93"), ("BP", "123-148/47-60"), ("finding", "no vea")}, set()),
    ("Resp: On 2L NC, SpO2 94-99%, RR 19. LS with crackles at bases.",
     {("O2 device", "NC"), ("O2 flow", "2l"), ("SpO2", "94-99"), ("RR", "19"), ("finding", "crackles")}, set()),
    ("T 37.8, Tmax 38.4. HR 120/80 written wrongly.", {("temp", "37.8"), ("temp", "38.4")}, {("HR", "12")}),
    ("Intubated on PSV 450x16, PEEP 5, FiO2 50%.", {("O2 device", "vent"), ("FiO2", "50%")}, set()),
    ("Resp: On high flow neb 50% with 6L NC.", {("O2 device", "high flow"), ("FiO2", "50%"), ("O2 flow", "6l")}, set()),
    ("Neuro: Sedated on propofol gtt at 40 mcg/kg/min, RASS -2.", {("drip", "propofol 40mcg/kg/min")}, set()),
    ("Heparin gtt per protocol, PTT q6h.", {("drip", "heparin")}, set()),
    ("Pain: C/o back pain 6/10, given morphine 2 mg IV with relief.",
     {("medication", "morphine 2mg"), ("finding", "pain")}, set()),
    ("Access: L SC TLC, R radial a-line, PIV x1. Foley d/c'd at 0600.",
     {("line", "central line"), ("line", "arterial line"), ("line", "PIV"), ("line", "no foley")}, {("line", "foley")}),
    ("GI/GU: Abd soft, non-tender. No BM overnight. Denies nausea.", {("finding", "no bm"), ("finding", "no nausea")},
     {("finding", "bm"), ("finding", "nausea")}),
    # MetaVision: Assessment / Action / Response / Plan
    ("Hypotension. Assessment: BP 82/40, MAP 55. Action: Levophed drip started at 0.04 mcg/kg/min. "
     "Response: BP 100/60. Plan: wean levophed as tolerated.",
     {("BP", "82/40"), ("BP", "100/60"), ("drip", "levophed 0.04mcg/kg/min")}, set()),
    ("Respiratory failure. Assessment: sats 88% on RA, RR 28. Action: placed on 4L NC. Response: SpO2 95%.",
     {("SpO2", "88"), ("SpO2", "95"), ("O2 device", "RA"), ("O2 device", "NC"), ("O2 flow", "4l"), ("RR", "28")}, set()),
]


@pytest.mark.parametrize("line, wanted, unwanted", LINES)
def test_the_extractor_finds_the_facts_of_hand_written_lines(line, wanted, unwanted):
    found = extract(line)
    assert wanted <= found, f"missing {wanted - found}"
    assert not unwanted & found


def test_negation_stays_in_its_clause():
    assert ("line", "foley") in extract("No edema, foley draining clear yellow urine.")
    assert ("finding", "no edema") in extract("No edema, foley draining clear yellow urine.")


def test_a_repeated_chart_value_is_carried_and_a_new_one_invented():
    reference = extract("CV: HR 70-89 NSR. Skin intact.")
    chart = extract("CV: HR 80s. BP 110-130/60-70. Resp: on 2L NC.")
    written = extract("HR 70-89 NSR. BP 110-130/60-70. on 4L NC, SpO2 93%.")
    assert classify(written, reference, chart) == Fidelity(written=5, matched=1, contradicted=0, carried=2, invented=2)


def test_a_value_the_reference_states_otherwise_is_contradicted_even_when_the_chart_has_it():
    reference = extract("HR 100-110 ST. Foley removed.")
    chart = extract("HR 70-89 NSR. Foley draining.")
    written = extract("HR 70-89 NSR. Foley draining.")
    assert classify(written, reference, chart) == Fidelity(written=2, matched=0, contradicted=2, carried=0, invented=0)
