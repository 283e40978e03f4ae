"""The params of params.yaml, one module per section over one strict loader (loader.py).

A stage imports only the sections it reads, so editing one section's dataclass re-runs only the stages that
read that section. Each field documents its knob in an attribute docstring; `notelm params` prints them.
"""
