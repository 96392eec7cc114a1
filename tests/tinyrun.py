"""A saved tiny base and a LoRA adapter on it with non-zero weights (so it changes the model), for the tests
that run `evaluate` end to end. Built from config, nothing downloaded."""

from __future__ import annotations

from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model

from training.tiny import build_tiny_model


def save_base_and_adapter(root: Path, tok, max_position_embeddings: int) -> None:
    """`root/base` (model + tokenizer) and `root/adapter` (r=4, lora_B drawn with seed 1)."""
    build_tiny_model(tok, max_position_embeddings=max_position_embeddings).save_pretrained(root / "base")
    tok.save_pretrained(root / "base")
    peft_model = get_peft_model(
        build_tiny_model(tok, max_position_embeddings=max_position_embeddings), LoraConfig(r=4)
    )
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5, generator=torch.Generator().manual_seed(1))
    peft_model.save_pretrained(root / "adapter")
