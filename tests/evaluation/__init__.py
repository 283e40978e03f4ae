"""Tests of notelm.evaluation (one file per module: tests/evaluation/test_<module>.py)."""
