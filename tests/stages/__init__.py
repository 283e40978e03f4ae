"""Tests of notelm.stages (one file per module: tests/stages/test_<module>.py)."""
