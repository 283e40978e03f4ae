"""Tests of notelm.report (one file per module: tests/report/test_<module>.py)."""
