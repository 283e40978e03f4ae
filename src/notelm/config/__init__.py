"""What the stages agree on: the params of params.yaml, one module per section (each over the strict loader,
core/loader.py), the model catalogue's rows (models.py), and the names the metrics files are made of
(names.py).

A stage imports only the sections it reads, so editing one section's dataclass re-runs only the stages that
read that section. Each field documents its knob in an attribute docstring; `notelm params` prints them.
"""
