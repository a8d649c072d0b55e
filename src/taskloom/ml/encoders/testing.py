"""A tiny random CLIP model, made offline, for tests and smoke checks of the CLIP kinds.

``make_tiny_clip(folder)`` writes a folder that ``ClipModel`` (and so
``TASKLOOM_CLIP_MODEL_DIR``) loads like a real checkpoint: a 2-layer CLIP with random
weights (seeded), a character-level BPE tokenizer and a PIL image processor. Its vectors mean
nothing; their shapes, determinism and plumbing are what it checks. Needs the ``clip`` extra.
"""

from __future__ import annotations

import string
from pathlib import Path

PROJECTION_DIM = 16
IMAGE_SIZE = 30


def make_tiny_clip(folder: str | Path, *, seed: int = 0) -> Path:
    import torch
    import transformers

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for ch in string.ascii_lowercase + string.digits + ".,!?'-":
        vocab[ch] = len(vocab)
        vocab[ch + "</w>"] = len(vocab)
    torch.manual_seed(seed)
    config = transformers.CLIPConfig(
        text_config={
            "vocab_size": len(vocab),
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "max_position_embeddings": 40,
            "bos_token_id": 0,
            "eos_token_id": 1,
            "pad_token_id": 1,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "image_size": IMAGE_SIZE,
            "patch_size": 6,
        },
        projection_dim=PROJECTION_DIM,
    )
    transformers.CLIPModel(config).eval().save_pretrained(str(folder))
    transformers.CLIPTokenizer(vocab=vocab, merges=[]).save_pretrained(str(folder))
    processor_cls = (
        getattr(transformers, "CLIPImageProcessorPil", None) or transformers.CLIPImageProcessor
    )
    processor_cls(
        size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    ).save_pretrained(str(folder))
    return folder
