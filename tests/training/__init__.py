"""Tests of notelm.training (one file per module: tests/training/test_<module>.py)."""
