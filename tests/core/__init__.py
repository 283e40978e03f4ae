"""Tests of notelm.core (one file per module: tests/core/test_<module>.py)."""
