"""The pipeline stages, one module each, named after its stage in dvc.yaml; stages never import each other."""
