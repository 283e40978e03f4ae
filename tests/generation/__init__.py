"""Tests of notelm.generation (one file per module: tests/generation/test_<module>.py)."""
