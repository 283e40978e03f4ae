"""Tests of notelm.privacy (one file per module: tests/privacy/test_<module>.py)."""
