"""The fact extractor on hand-written MIMIC-style lines (CareVue and MetaVision), and the sorting of a
completion's facts against its reference and its chart."""

from __future__ import annotations

import pytest

from notelm.evaluation.facts import Fidelity, classify, consistent, extract

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


def test_a_repeated_chart_value_is_carried_a_changed_one_a_new_value_and_an_unmentioned_one_unsupported():
    reference = extract("CV: HR 70-89 NSR. Skin intact.")
    chart = extract("CV: HR 80s. BP 110-130/60-70. Resp: on 2L NC.")
    written = extract("HR 70-89 NSR. BP 110-130/60-70. on 4L NC, SpO2 93%. No edema.")
    assert classify(written, reference, chart) == Fidelity(
        written=6, matched=1, contradicted=0, carried=2, new_value=1, unsupported=1, unsupported_negative=1)
    assert classify(written, reference, chart).errors == 2  # the new flow and the unmentioned SpO2; not the negative


def test_a_value_the_reference_states_otherwise_is_contradicted_even_when_the_chart_has_it():
    reference = extract("HR 100-110 ST. Foley removed.")
    chart = extract("HR 70-89 NSR. Foley draining.")
    written = extract("HR 70-89 NSR. Foley draining.")
    assert classify(written, reference, chart) == Fidelity(
        written=2, matched=0, contradicted=2, carried=0, new_value=0, unsupported=0, unsupported_negative=0)


@pytest.mark.parametrize("kind, a, b, agree", [
    ("HR", "88", "70-89", True),  # inside a stated range
    ("HR", "75", "70s", True),  # inside a decade
    ("HR", "88", "70s", False),
    ("HR", "92", "70-89", False),
    ("HR", "60-70s", "75", True),
    ("BP", "124/68", "110s-130s/60s", True),  # part by part
    ("BP", "124/88", "110s-130s/60s", False),
    ("BP", "124/68", "124", False),  # a different shape never agrees
    ("SBP", "120s-140s", "150", False),
    ("temp", "37.2", "37.3", False),
    ("drip", "propofol 30mcg/kg/min", "propofol 30mcg/kg/min", True),
    ("drip", "propofol 30mcg/kg/min", "propofol 20-40mcg/kg/min", False),  # doses are compared as written
])
def test_values_agree_as_clinicians_read_ranges_and_decades(kind, a, b, agree):
    assert consistent(kind, a, b) is agree
    assert consistent(kind, b, a) is agree


def test_a_value_inside_the_references_decade_is_matched_not_contradicted():
    reference, chart = extract("CV: HR 80s NSR, BP 110s-130s/60s."), frozenset()
    written = extract("HR 84, BP 124/68.")
    assert classify(written, reference, chart).matched == 2
    assert classify(extract("HR 94, BP 124/68."), reference, chart).contradicted == 1


@pytest.mark.parametrize("line, drip", [
    ("Insulin gtt off at 0400.", "no insulin"),
    ("Nitro gtt titrated off, BP 150s/80s.", "no nitro"),
    ("levophed gtt weaned off at 0200.", "no levophed"),
    ("heparin gtt on hold for procedure.", "no heparin"),
    ("Action: propofol weaned off for SBT.", "no propofol"),
])
def test_a_drip_that_is_off_or_titrated_off_is_not_running(line, drip):
    found = extract(line)
    assert ("drip", drip) in found
    assert ("drip", drip.removeprefix("no ")) not in found


def test_a_stopped_drip_is_the_same_subject_as_the_running_one():
    running, stopped = extract("Insulin gtt at 3 units/hr."), extract("Insulin gtt off.")
    assert classify(stopped, running, frozenset()).contradicted == 1


def test_the_drip_after_then_is_the_drug_named_before_it():
    found = extract("CV: dilt 10 mg IV x1 then gtt at 5 mg/hr, HR now 80s-90s.")
    assert {("medication", "dilt 10mg"), ("drip", "dilt 5mg/hr"), ("HR", "80s-90s")} <= found
    assert not any(value.startswith("then") for _, value in found)


@pytest.mark.parametrize("line, fact", [
    ("CV: HR 70s SR, BP 150s/80s.", ("BP", "150s/80s")),
    ("SBP 120s-140s on neo.", ("SBP", "120s-140s")),
    ("ID: T max 38.9, pan cultured.", ("temp", "38.9")),
    ("Sats 93-95% on 40% face tent.", ("FiO2", "40%")),
    ("Sats 93-95% on 40% face tent.", ("O2 device", "face tent")),
    ("Resp: no longer requiring supplemental O2.", ("O2 device", "RA")),
])
def test_the_misses_the_audit_found_are_read(line, fact):
    assert fact in extract(line)
