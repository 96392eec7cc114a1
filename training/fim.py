"""Fill-in-the-middle (FIM) the way Code Llama trains it, built from token ids.

A document is split at two uniform random character positions into prefix / middle / suffix and laid out as

    PSM: BOS <PRE> enc(prefix) <SUF> enc'(suffix) <MID> enc'(middle) <EOT>
    SPM: BOS <PRE> <SUF> enc'(suffix) <MID> enc(prefix + middle) <EOT>       (Code Llama's SPM variant)
    CLM: BOS enc(document)

and EOS closes every document (the model must learn to stop). As in Code Llama, FIM is applied only to
documents that fit one context; a longer document is cut into CLM chunks (training.prepare).
`enc'` is Code Llama's "no leading space" encoding: SentencePiece prepends "▁" to a piece, which is right at
the start of a file and wrong in the middle of one, so Code Llama encodes `"☺" + piece` and drops the
sentinel's tokens. Suffix and middle are encoded with `enc'`, the prefix with `enc` in both layouts: exactly
the prompts Code Llama's own inference builds (`infilling_prompt_tokens` in facebookresearch/codellama: `<PRE>
{pre} <SUF>{suf} <MID>` and, suffix first, `<PRE> <SUF>{suf} <MID> {pre}`). In SPM the prefix and the middle
are one piece, so no token is split at their boundary; with an empty prefix that piece is the middle alone,
encoded with `enc'` as in PSM. The special tokens are never put into text: every sequence is concatenated from
ids, so no tokenizer can re-split them.

`plan_fim` (the only random step, fed an explicit numpy Generator) decides the mode and the split;
`fim_pieces` lists the texts to encode; `assemble` joins the encoded pieces. Keeping those apart lets
`training.prepare` encode the pieces of thousands of documents in one batched call (`encode_pieces`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from training.options import INFILL_MODES

Mode = Literal["clm", "psm", "spm"]

# Code Llama's reference code uses this sentinel (`sp.encode("☺" + s)[2:]`): a character that never merges
# with what follows, so the tokens of "☺" + s are those of "☺" followed by those of s without a leading "▁".
SENTINEL = "☺"

STARCODER_TOKENS = ("<fim_prefix>", "<fim_suffix>", "<fim_middle>")


@dataclass(frozen=True)
class FimTokens:
    """The special token ids FIM needs. `bos_id` is None for tokenizers without BOS (StarCoder)."""

    prefix_id: int
    suffix_id: int
    middle_id: int
    eot_id: int
    bos_id: int | None
    eos_id: int


@dataclass(frozen=True)
class FimPlan:
    """One document's layout. For "clm", `prefix` holds the whole document and the other pieces are empty."""

    mode: Mode
    prefix: str
    middle: str
    suffix: str


def fim_tokens(tokenizer) -> FimTokens:
    """FIM token ids of a Code Llama tokenizer (`prefix_id` …) or a StarCoder-style one (`<fim_prefix>` …)."""
    eos_id = tokenizer.eos_token_id
    if eos_id is None:
        raise ValueError(f"{type(tokenizer).__name__} has no EOS token: documents could not be closed.")
    ids = [getattr(tokenizer, name, None) for name in ("prefix_id", "suffix_id", "middle_id", "eot_id")]
    if all(isinstance(i, int) for i in ids):
        return FimTokens(*ids, bos_id=tokenizer.bos_token_id, eos_id=eos_id)
    vocab = tokenizer.get_vocab()
    if all(t in vocab for t in STARCODER_TOKENS):
        # StarCoder has no separate end-of-infill token: the middle ends with EOS.
        pre, suf, mid = (vocab[t] for t in STARCODER_TOKENS)
        return FimTokens(pre, suf, mid, eot_id=eos_id, bos_id=tokenizer.bos_token_id, eos_id=eos_id)
    raise ValueError(
        f"{type(tokenizer).__name__} has no fill-in-the-middle tokens (neither Code Llama's "
        f"prefix_id/suffix_id/middle_id/eot_id nor StarCoder's {', '.join(STARCODER_TOKENS)}). "
        "Use a Code Llama or StarCoder tokenizer, or set `objective: clm` in the recipe."
    )


def _sentinel_ids(tokenizer) -> list[int]:
    # Cached on the tokenizer object: computed once per tokenizer, not once per piece.
    cached = getattr(tokenizer, "_fim_sentinel_ids", None)
    if cached is None:
        cached = tokenizer.encode(SENTINEL, add_special_tokens=False)
        tokenizer._fim_sentinel_ids = cached
    return cached


def strip_sentinel(tokenizer, ids: list[int]) -> list[int]:
    """Drop the sentinel's tokens from the ids of `SENTINEL + piece` (see `encode_piece`)."""
    head = _sentinel_ids(tokenizer)
    if ids[: len(head)] != head:
        raise ValueError(
            f"{type(tokenizer).__name__} merged the sentinel {SENTINEL!r} with the text after it; the "
            "no-leading-space encoding of suffix/middle pieces cannot be done with this tokenizer."
        )
    return ids[len(head) :]


def encode_piece(tokenizer, text: str, leading_space: bool) -> list[int]:
    """Token ids of `text` without BOS/EOS; `leading_space=False` suppresses SentencePiece's leading "▁"."""
    if not text:
        return []
    if leading_space:
        return tokenizer.encode(text, add_special_tokens=False)
    return strip_sentinel(tokenizer, tokenizer.encode(SENTINEL + text, add_special_tokens=False))


def decode_piece(tokenizer, ids: Sequence[int]) -> str:
    """The exact text of `ids`: SentencePiece decoders drop the first "▁" of a sequence, which would eat a
    real space of a piece encoded with `leading_space=False`; decoding after the sentinel keeps it. The
    inverse of `encode_piece(..., leading_space=False)`; a `leading_space=True` piece comes back with the
    space SentencePiece prepended (what the model sees)."""
    head = _sentinel_ids(tokenizer)
    text = tokenizer.decode([*head, *ids], skip_special_tokens=True)
    return text[len(tokenizer.decode(head, skip_special_tokens=True)) :]


def plain_backend(tokenizer):
    """The Rust `tokenizers.Tokenizer` behind `tokenizer` when calling it directly gives exactly the ids that
    `tokenizer(texts, add_special_tokens=False)` gives, else None (a slow tokenizer, or a backend left with
    truncation, padding or special-token splitting set: transformers resets those on every call)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or backend.truncation is not None or backend.padding is not None:
        return None
    if backend.encode_special_tokens != bool(getattr(tokenizer, "split_special_tokens", False)):
        return None
    return backend


def encode_batch(tokenizer, texts: list[str]) -> list[list[int]]:
    """Token ids of each text without BOS/EOS: `tokenizer(texts, add_special_tokens=False)["input_ids"]`.

    Where it can, this calls the Rust backend's `encode_batch_fast`, which skips offset bookkeeping and
    transformers' per-text dict conversion (about twice the throughput on code) and, like any batched call,
    spreads the texts over all cores.
    """
    if not texts:
        return []
    backend = plain_backend(tokenizer)
    if backend is None:
        return tokenizer(texts, add_special_tokens=False)["input_ids"]
    return [e.ids for e in backend.encode_batch_fast(texts, add_special_tokens=False)]


def encode_pieces(tokenizer, texts: list[str], leading_space: bool) -> list[list[int]]:
    """`encode_piece` of every text, in one batched tokenizer call (the sentinel trick included)."""
    if leading_space:
        return [ids if text else [] for ids, text in zip(encode_batch(tokenizer, texts), texts, strict=True)]
    # Empty pieces stay empty (encode_piece never encodes them), so they are sent as "" to keep positions.
    encoded = encode_batch(tokenizer, [SENTINEL + t if t else "" for t in texts])
    return [strip_sentinel(tokenizer, ids) if text else [] for ids, text in zip(encoded, texts, strict=True)]


def psm_prompt_ids(tokenizer, prefix: str, suffix: str) -> list[int]:
    """The infilling prompt `BOS <PRE> prefix <SUF> suffix <MID>`; the model then writes middle + <EOT>."""
    t = fim_tokens(tokenizer)
    prefix_ids = encode_piece(tokenizer, prefix, leading_space=True)
    suffix_ids = encode_piece(tokenizer, suffix, leading_space=False)
    return [*_bos(t), t.prefix_id, *prefix_ids, t.suffix_id, *suffix_ids, t.middle_id]


def spm_prompt_ids(tokenizer, prefix: str, suffix: str) -> list[int]:
    """The suffix-first prompt `BOS <PRE> <SUF> suffix <MID> prefix` (Code Llama's `<PRE> <SUF>{suf} <MID>
    {pre}`, the SPM layout training uses); the model continues the prefix with middle + <EOT>."""
    t = fim_tokens(tokenizer)
    suffix_ids = encode_piece(tokenizer, suffix, leading_space=False)
    prefix_ids = encode_piece(tokenizer, prefix, leading_space=True)
    return [*_bos(t), t.prefix_id, t.suffix_id, *suffix_ids, t.middle_id, *prefix_ids]


def infill_prompt_ids(tokenizer, prefix: str, suffix: str, mode: str = "psm") -> list[int]:
    """The infilling prompt in `mode` ("psm" or "spm")."""
    if mode not in INFILL_MODES:
        raise ValueError(f"infilling mode {mode!r}: use psm or spm")
    return (psm_prompt_ids if mode == "psm" else spm_prompt_ids)(tokenizer, prefix, suffix)


def plan_fim(text: str, rng: np.random.Generator, fim_rate: float, spm_rate: float) -> FimPlan:
    """Choose CLM / PSM / SPM and the two split points. The only random step; pure given `rng`'s state.

    Exactly one draw decides FIM-or-not, and only FIM documents draw the two positions and the mode, so a
    run's data order does not depend on the text. Documents shorter than 2 characters are always CLM
    (there is no middle to cut out).
    """
    if fim_rate <= 0 or len(text) < 2 or rng.random() >= fim_rate:
        return FimPlan("clm", text, "", "")
    # Two uniform cut points in [0, len]: prefix, middle or suffix may be empty, as in Code Llama.
    lo, hi = sorted(int(x) for x in rng.integers(0, len(text) + 1, size=2))
    mode: Mode = "spm" if rng.random() < spm_rate else "psm"
    return FimPlan(mode, text[:lo], text[lo:hi], text[hi:])


def fim_pieces(plan: FimPlan) -> list[tuple[str, bool]]:
    """The (text, leading_space) pieces to encode for `plan`, in the order `assemble` expects them."""
    if plan.mode == "clm":
        return [(plan.prefix, True)]
    if plan.mode == "psm":
        return [(plan.prefix, True), (plan.suffix, False), (plan.middle, False)]
    # SPM encodes prefix + middle as one piece, so training never sees a token split at that boundary. It
    # starts with the prefix, which takes SentencePiece's leading space as Code Llama's SPM prompt gives it
    # (`<MID> {pre}`); a piece that is only the middle does not (the middle never has it).
    return [(plan.suffix, False), (plan.prefix + plan.middle, bool(plan.prefix))]


def assemble(
    plan: FimPlan, pieces: list[list[int]], tokens: FimTokens, add_eos: bool = True, add_bos: bool = True
) -> list[int]:
    """Join encoded pieces (from `fim_pieces`) and the special tokens into one training sequence.
    `add_bos=False` / `add_eos=False` are for CLM chunks that continue / do not end a document."""
    eos = [tokens.eos_id] if add_eos else []
    bos = _bos(tokens)
    if plan.mode == "clm":
        return (bos if add_bos else []) + pieces[0] + eos
    if plan.mode == "psm":
        prefix, suffix, middle = pieces
        pre, suf, mid, eot = tokens.prefix_id, tokens.suffix_id, tokens.middle_id, tokens.eot_id
        return [*bos, pre, *prefix, suf, *suffix, mid, *middle, eot, *eos]
    suffix, prefix_middle = pieces
    pre, suf, mid, eot = tokens.prefix_id, tokens.suffix_id, tokens.middle_id, tokens.eot_id
    return [*bos, pre, suf, *suffix, mid, *prefix_middle, eot, *eos]


def apply_fim(
    tokenizer,
    text: str,
    rng: np.random.Generator,
    fim_rate: float,
    spm_rate: float,
    tokens: FimTokens | None = None,
) -> tuple[list[int], FimPlan]:
    """One document → (training ids ending in EOS, its plan). `tokens` is only needed when FIM may happen."""
    plan = plan_fim(text, rng, fim_rate, spm_rate)
    if tokens is None:
        tokens = fim_tokens(tokenizer) if fim_rate > 0 else _clm_tokens(tokenizer)
    pieces = [encode_piece(tokenizer, piece, space) for piece, space in fim_pieces(plan)]
    return assemble(plan, pieces, tokens), plan


def _bos(tokens: FimTokens) -> list[int]:
    return [] if tokens.bos_id is None else [tokens.bos_id]


def _clm_tokens(tokenizer) -> FimTokens:
    """BOS/EOS only, for plain causal LM with a tokenizer that has no FIM tokens (FIM ids are never used)."""
    return FimTokens(-1, -1, -1, -1, bos_id=tokenizer.bos_token_id, eos_id=tokenizer.eos_token_id)


def clm_tokens(tokenizer) -> FimTokens:
    """FIM ids when the tokenizer has them, else placeholders that CLM never uses."""
    try:
        return fim_tokens(tokenizer)
    except ValueError:
        return _clm_tokens(tokenizer)
