"""Leakage both ways: the audit that proves test notes are not in train (`audit`), the identifier-like strings a
continuation may hold (`identifiers`), and whether the model gives its training notes back (`memorize`:
extraction train vs test, canary exposure, the gate and the app's refusal).
"""
