"""Tiny random causal LMs built from a config, with a word-piece tokenizer trained on the spot.

They load, train and generate in well under a second, so tests exercise the real HF code
paths of every architecture family in the model matrix without downloading anything.
"""

from __future__ import annotations

from pathlib import Path

CORPUS = [
    "Pt alert and oriented x3, follows commands, MAE. HR 80s NSR, BP stable.",
    "LS clear bilaterally, RA sats 97%. Abd soft NT/ND, +BS. Foley draining clear yellow urine.",
    "Skin intact. Pain controlled with PRN tylenol. Family visited, updated on plan of care.",
    "Plan: continue to monitor, wean levophed as tolerated, f/u AM labs.",
]


def make_tokenizer(vocab_size: int = 400):
    """A byte-level BPE tokenizer trained on CORPUS, with EOS/PAD/BOS tokens, as a fast HF tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=["<|endoftext|>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS * 4, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", bos_token="<|endoftext|>",
                                   pad_token="<pad>")


def make_config(family: str, tokenizer):
    """A 2-layer, 32-wide config of `family` (gpt2, llama, qwen3, opt, gemma3, mpt, gpt_neo, bitnet) sized for
    `tokenizer`."""
    import transformers as tf

    small = dict(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                 pad_token_id=tokenizer.pad_token_id)
    if family == "gpt2":
        return tf.GPT2Config(n_layer=2, n_head=2, n_embd=32, n_positions=512, **small)
    if family == "mpt":
        return tf.MptConfig(n_layers=2, n_heads=2, d_model=32, expansion_ratio=2, max_seq_len=512, **small)
    if family == "gpt_neo":
        return tf.GPTNeoConfig(num_layers=2, num_heads=2, hidden_size=32, attention_types=[[["global", "local"], 1]],
                               window_size=16, max_position_embeddings=512, **small)
    if family == "opt":
        return tf.OPTConfig(num_hidden_layers=2, num_attention_heads=2, hidden_size=32, ffn_dim=64,
                            word_embed_proj_dim=32, max_position_embeddings=512, **small)
    common = dict(num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1, hidden_size=32,
                  intermediate_size=64, max_position_embeddings=512, head_dim=16, **small)
    if family == "llama":
        return tf.LlamaConfig(**common)
    if family == "qwen3":
        return tf.Qwen3Config(**common)
    if family == "bitnet":
        return tf.BitNetConfig(**common)
    if family == "gemma3":
        return tf.Gemma3TextConfig(**common, sliding_window=64)
    raise ValueError(f"unknown family {family}")


def make_tiny_model(directory: Path, family: str = "llama", seed: int = 0) -> Path:
    """Write a tiny random `family` model + tokenizer to `directory` (HF format, safetensors)."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    tokenizer = make_tokenizer()
    config = make_config(family, tokenizer)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    return directory


CHINESE_CORPUS = [  # the seed-003 arena's prompts were Chinese nursing text
    "患者神志清楚，生命体征平稳，心率八十次每分，血压稳定。",
    "双肺呼吸音清，未吸氧下血氧饱和度百分之九十七。腹软无压痛，肠鸣音正常。",
    "皮肤完整。疼痛可控，按需给予止痛药。家属探视，已告知护理计划。",
    "计划：继续监测，逐渐减少升压药，复查晨间化验。",
]


def make_chinese_tokenizer():
    """A BERT-style WordPiece tokenizer over the characters of CHINESE_CORPUS, as uer/gpt2-chinese-* ship:
    [CLS] … [SEP] around a text, one token per Chinese character, no EOS token."""
    from transformers import BertTokenizerFast

    chars = sorted({c for line in CHINESE_CORPUS for c in line})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars]
    return BertTokenizerFast(vocab={token: i for i, token in enumerate(vocab)}, tokenize_chinese_chars=True)


def make_tiny_chinese_model(directory: Path, seed: int = 0) -> Path:
    """Write a tiny random GPT-2 with the Chinese WordPiece tokenizer to `directory` (as gpt2-chinese is built)."""
    import torch
    import transformers as tf

    torch.manual_seed(seed)
    tokenizer = make_chinese_tokenizer()
    config = tf.GPT2Config(n_layer=2, n_head=2, n_embd=32, n_positions=512, vocab_size=len(tokenizer),
                           bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id,
                           pad_token_id=tokenizer.pad_token_id)
    tf.GPT2LMHeadModel(config).save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    return directory
