"""Tests of notelm.data (one file per module: tests/data/test_<module>.py)."""
