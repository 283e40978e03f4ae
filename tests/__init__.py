"""NoteLM tests: tests/<room>/test_<module>.py mirror src/notelm/<room>/<module>.py; the consumers and the whole-project checks sit at this level."""
