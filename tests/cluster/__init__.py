"""Tests of notelm.cluster (one file per module: tests/cluster/test_<module>.py)."""
