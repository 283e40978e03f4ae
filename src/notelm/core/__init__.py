"""What every stage imports, and nothing else: errors, artifact paths, atomic files, the stage runner and the
strict params loader.

The lowest room (it imports no other) and a dep of every stage as one folder, so keep it small and rarely
edited: editing it re-runs every stage (tests/test_contract.py holds the line count of its modules).
"""
