"""Decoding: batched greedy continuations to the word cap (`decoding`), and suggestions while typing
(`suggest`: one typist's reused KV cache; every word boundary of a note decoded at once with a tree mask).

Imports only the rooms below it (core/, config/, data/, training/).
"""
