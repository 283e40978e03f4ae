"""Notes in: the MIMIC-III / MIMIC-IV readers, cleaning, the patient-level split, the patient's earlier notes
(history), the synthetic corpus in MIMIC-III's schema that the default pipeline uses, and two text helpers
of the loops over notes (the CJK range, progress bars).

Imports only core/ and config/.
"""
