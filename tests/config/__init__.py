"""Tests of notelm.config (one file per module: tests/config/test_<module>.py)."""
