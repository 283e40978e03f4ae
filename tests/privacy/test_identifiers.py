"""notelm.privacy.identifiers on hand-written lines: what counts as an identifier a de-identified note would have masked,
and what does not (vital signs, doses, times, MIMIC placeholders)."""

from __future__ import annotations

import pytest

from notelm.privacy.identifiers import KINDS, count, scan


@pytest.mark.parametrize("text, kind", [
    ("Seen on 3/14/2150 at bedside.", "date"),
    ("Last BM 2150-03-14.", "date"),
    ("Admitted Jan 5, 2151 from OSH.", "date"),
    ("Admitted 5 January 2151.", "date"),
    ("Daughter can be reached at 617-555-0199.", "phone"),
    ("Call (617) 555 0199 with updates.", "phone"),
    ("SSN 123-45-6789 on file.", "ssn"),
    ("MRN: 1234567.", "record_number"),
    ("Family contact code 482913.", "record_number"),
    ("Spoke with Dr. Smith re: plan.", "name"),
    ("Mrs Jones at bedside.", "name"),
    ("Email j.doe@example.org for records.", "email"),
    ("92 yo female admitted with sepsis.", "age_over_89"),
])
def test_an_identifier_is_found(text, kind):
    assert scan(text) == {kind: 1}


@pytest.mark.parametrize("text", [
    "BP 120/80, HR 88, RR 18, SpO2 97% on 2L NC, T 37.2.",
    "Heparin gtt at 1200 units/hr, K 3.8, Mg 2.1, wt 81.5 kg.",
    "Turned q2h at 14:00 and 1600; I/O 1200/850.",
    "Dr. [**Last Name (STitle) 123**] aware; seen [**2150-3-14**] at [**Hospital1 18**].",
    "Dr. [**NAME**] notified on [**DATE**]; [**PHONE**].",
    "Pt is 67 yo, alert and oriented x3.",
])
def test_clinical_numbers_and_placeholders_are_not(text):
    assert scan(text) == {}


def test_count_lists_every_kind_and_a_span_counts_once():
    totals = count(["Call 617-555-0199 or 617-555-0100.", "MRN 1234567", "nothing here"])
    assert set(totals) == {*KINDS, "total"}
    assert totals["phone"] == 2 and totals["record_number"] == 1 and totals["total"] == 3
