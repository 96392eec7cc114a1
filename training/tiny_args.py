"""The fields of a tiny from-config model (tests, the demo recipe, the mini experiment's pretraining) and
their checks: plain dataclasses with no torch or transformers import, so configs load and `--help` answers
fast; training/tiny.py builds the model from them."""

from __future__ import annotations

from dataclasses import dataclass, field

SPECIAL = ["<unk>", "<s>", "</s>"]
BYTE_TOKENS = [f"<0x{i:02X}>" for i in range(256)]
MIN_VOCAB = len(SPECIAL) + len(BYTE_TOKENS) + 16  # room for a few merges besides the fixed tokens


@dataclass
class TinyModelArguments:
    """The locally built base's tokenizer and shape: one set of names for the `tiny` fine-tuning recipe
    (TrainConfig) and for pretraining (PretrainConfig), both built by `build_tiny`."""

    tiny_vocab_size: int = field(default=512, metadata={"help": "BPE vocabulary size (FIM tokens included)."})
    tiny_tokenizer_chars: int = field(
        default=2_000_000, metadata={"help": "Characters of the training text the BPE is trained on."}
    )
    tiny_hidden_size: int = field(default=64, metadata={"help": "Llama hidden size."})
    tiny_num_layers: int = field(default=2, metadata={"help": "Llama decoder layers."})
    tiny_num_heads: int = field(default=4, metadata={"help": "Attention heads (as many key/value heads)."})
    tiny_intermediate_size: int = field(default=128, metadata={"help": "MLP width."})


TINY_POSITIVE = tuple(f.name for f in TinyModelArguments.__dataclass_fields__.values())


def tiny_problems(args: TinyModelArguments, check_vocab: bool = True) -> list[str]:
    """What `build_tiny` would refuse or build wrong, as `field=value: ...` lines (checked at load)."""
    problems = []
    if check_vocab and args.tiny_vocab_size < MIN_VOCAB:
        problems.append(f"tiny_vocab_size={args.tiny_vocab_size}: must be at least {MIN_VOCAB}")
    heads, hidden = args.tiny_num_heads, args.tiny_hidden_size
    if heads > 0 and (hidden % heads or (hidden // heads) % 2):
        problems.append(
            f"tiny_hidden_size={hidden}: must be tiny_num_heads ({heads}) times an even head size "
            "(rotary embeddings)"
        )
    return problems


# A small built-in text so a tokenizer can be built with no corpus at hand (unit tests).
