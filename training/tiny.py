"""Tiny, offline stand-ins for Code Llama: a Code Llama–style tokenizer and a small Llama.

Tests, the `tiny` recipe and the offline demo use these so that nothing is ever downloaded. The tokenizer is
built the way Code Llama's is (SentencePiece-style BPE with "▁" for spaces, byte fallback, BOS=<s>, EOS=</s>)
and carries the same infilling tokens (`▁<PRE>`, `▁<SUF>`, `▁<MID>`, `▁<EOT>`, `<FILL_ME>`), so the FIM code
runs against the same tokenizer class and ids layout as the real model.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import CodeLlamaTokenizer, LlamaConfig, LlamaForCausalLM

from flyte_llama_common.atomic import staged_dir
from training.tiny_args import (
    BYTE_TOKENS,
    MIN_VOCAB,
    SPECIAL,
    TinyModelArguments,
)

_FALLBACK_TEXT = '''
from flytekit import task, workflow


@task
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


@workflow
def wf(x: int = 1) -> int:
    return add(a=x, b=2)

func main() {
    fmt.Println("hello flyte")
}
'''


# Learning merges: every "\n" is a word of its own, then CodeLlamaTokenizer's Metaspace (spaces become "▁",
# one prefix space, no split at spaces, so indentation runs like "▁▁▁▁" stay single tokens). Llama's
# SentencePiece never joins a newline to other text; a BPE that learned `:\n▁▁▁▁` would split a token at the
# start of every line-aligned hole, a training/inference mismatch Code Llama does not have. Only merges
# matter: CodeLlamaTokenizer rebuilds its pre-tokenizer on every load (plain Metaspace), but a BPE applies
# learned merges only, and none of them contains a newline, so no token ever crosses one.
def training_pre_tokenizer() -> pre_tokenizers.PreTokenizer:
    """The pre-tokenizer the tiny BPE learns its merges under (see above)."""
    return pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split("\n", behavior="isolated"),
            pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False),
        ]
    )


def build_tiny_tokenizer(texts: Iterable[str] | None = None, vocab_size: int = 512) -> CodeLlamaTokenizer:
    """Train a small Code Llama–style BPE on `texts` (deterministic for the same texts) and wrap it.

    The vocabulary is: <unk>, <s>, </s>, the 256 byte-fallback tokens, learned merges, then the FIM tokens.
    """
    if vocab_size < MIN_VOCAB:
        raise ValueError(f"vocab_size={vocab_size} is too small: need at least {MIN_VOCAB}")
    texts = list(texts) if texts is not None else [_FALLBACK_TEXT]
    bpe = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    bpe.pre_tokenizer = training_pre_tokenizer()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL + BYTE_TOKENS,
        show_progress=False,
        max_token_length=16,
    )
    bpe.train_from_iterator(texts, trainer=trainer)
    model_json = json.loads(bpe.to_str())["model"]
    vocab: dict[str, int] = model_json["vocab"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model_json["merges"]]
    tok = CodeLlamaTokenizer(vocab=vocab, merges=merges)
    tok.pad_token = tok.eos_token  # padding is masked by attention_mask; EOS itself is always trained on
    tok.model_max_length = 4096
    return tok


def build_tiny_model(
    tokenizer: CodeLlamaTokenizer,
    hidden_size: int = 64,
    num_hidden_layers: int = 2,
    num_attention_heads: int = 4,
    intermediate_size: int = 128,
    max_position_embeddings: int = 2048,
    seed: int = 0,
) -> LlamaForCausalLM:
    """A randomly initialised Llama sized for CPU tests, its vocabulary matching `tokenizer`."""
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads,
        num_key_value_heads=num_attention_heads,
        max_position_embeddings=max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return LlamaForCausalLM(config)


def sample_texts(texts: Iterable[str], max_chars: int = 2_000_000) -> list[str]:
    """The first `max_chars` characters' worth of `texts`: enough to train a tiny BPE quickly."""
    out, total = [], 0
    for text in texts:
        out.append(text)
        total += len(text)
        if total >= max_chars:
            break
    return out


def build_tiny(
    texts: Iterable[str], args: TinyModelArguments, max_position_embeddings: int, seed: int
) -> tuple[CodeLlamaTokenizer, LlamaForCausalLM]:
    """The one builder of a local base: a BPE trained on the first `tiny_tokenizer_chars` of `texts`, and
    a randomly initialised Llama of `args`' shape over that vocabulary."""
    tokenizer = build_tiny_tokenizer(sample_texts(texts, args.tiny_tokenizer_chars), args.tiny_vocab_size)
    model = build_tiny_model(
        tokenizer,
        hidden_size=args.tiny_hidden_size,
        num_hidden_layers=args.tiny_num_layers,
        num_attention_heads=args.tiny_num_heads,
        intermediate_size=args.tiny_intermediate_size,
        max_position_embeddings=max_position_embeddings,
        seed=seed,
    )
    return tokenizer, model


def save_base(model, tokenizer, out_dir: Path, extra: dict[str, str] | None = None) -> Path:
    """Model + tokenizer (+ `extra` text files) into `out_dir`, written beside it and renamed into place."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with staged_dir(out_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        for name, text in (extra or {}).items():
            (tmp / name).write_text(text)
    return out_dir


def build_tiny_base(texts: list[str], out_dir: Path, config) -> Path:
    """The `tiny` recipe's base (a TrainConfig): built from the train split and saved to RUN/base."""
    tokenizer, model = build_tiny(texts, config, max(2048, config.max_length), config.seed)
    return save_base(model, tokenizer, out_dir)
