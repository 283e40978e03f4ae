"""notelm.data.history: which notes are a patient's later ones (the ones with a chart)."""

from __future__ import annotations

from notelm.data.history import alternate


def test_alternate_takes_each_patients_second_fourth_notes_in_row_order():
    rows = [{"note_id": n, "subject_id": s, "chartdate": f"2150-01-0{d}", "charttime": None}
            for n, s, d in [("a1", 1, 1), ("b1", 2, 1), ("a2", 1, 2), ("a3", 1, 3), ("b2", 2, 2), ("a4", 1, 4)]]
    assert [r["note_id"] for r in alternate(rows)] == ["a2", "b2", "a4"]
    assert [r["note_id"] for r in alternate(rows, 2)] == ["a2", "b2"]
