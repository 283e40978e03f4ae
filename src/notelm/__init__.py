"""NoteLM: a reproducible, DVC-versioned lab for clinical nursing-note completion."""

__version__ = "0.1.0"
