"""Scoring a continuation and a suggestion: ROUGE, BERTScore, facts, templating, the model-free baselines and
proposers (the chart copy, the n-gram table, retrieval), the simulated typist's keystrokes, and the
patient-clustered bootstrap and paired intervals every claim is made with.

Imports rooms below it (core/ … generation/), never privacy/, report/ or a stage.
"""
