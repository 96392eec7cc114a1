"""Fill-in-the-middle: exact id sequences, round trips, rates and edge cases, against a Code Llama–style
tokenizer built offline. Expected sequences are computed here from the tokenizer directly, not from
training.fim's helpers."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from tokenizers import pre_tokenizers
from transformers import PreTrainedTokenizerFast

from training.fim import (
    FimPlan,
    apply_fim,
    assemble,
    encode_piece,
    fim_pieces,
    fim_tokens,
    infill_prompt_ids,
    plan_fim,
    psm_prompt_ids,
    spm_prompt_ids,
)
from training.tiny import build_tiny_tokenizer

DOC = (
    "from flytekit import task\n\n\n@task\n"
    'def add(a: int, b: int) -> int:\n    """Add."""\n    return a + b\n'
)


@pytest.fixture(scope="module")
def tok():
    return build_tiny_tokenizer()


@pytest.fixture(scope="module")
def nospace(tok):
    """An independent no-leading-space encoder: the same BPE with SentencePiece's leading "▁" switched off."""
    backend = copy.deepcopy(tok.backend_tokenizer)
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="never", split=False)
    return lambda s: backend.encode(s, add_special_tokens=False).ids


def enc(tok, s):
    return tok.encode(s, add_special_tokens=False)


def first_plan(mode, fim_rate=1.0):
    """A seed whose first plan is `mode` (searching keeps the test independent of numpy's stream details)."""
    for seed in range(200):
        plan = plan_fim(DOC, np.random.default_rng(seed), fim_rate, 0.5)
        if plan.mode == mode and plan.prefix and plan.middle and plan.suffix:
            return seed, plan
    raise AssertionError(f"no seed gives {mode}")


def test_fim_tokens_are_code_llama_ids(tok):
    t = fim_tokens(tok)
    assert (t.prefix_id, t.suffix_id, t.middle_id, t.eot_id) == (
        tok.prefix_id,
        tok.suffix_id,
        tok.middle_id,
        tok.eot_id,
    )
    assert (t.bos_id, t.eos_id) == (tok.bos_token_id, tok.eos_token_id)


def test_encode_piece_drops_only_the_leading_space(tok, nospace):
    for piece in ["x = 1", "    return a + b\n", " leading", "ŋ unicode ☺"]:
        assert encode_piece(tok, piece, leading_space=False) == nospace(piece)
        assert encode_piece(tok, piece, leading_space=True) == enc(tok, piece)
    assert encode_piece(tok, "", leading_space=False) == []


def test_psm_exact_ids(tok, nospace):
    seed, plan = first_plan("psm")
    ids, got_plan = apply_fim(tok, DOC, np.random.default_rng(seed), 1.0, 0.5)
    assert got_plan == plan
    expected = [tok.bos_token_id, tok.prefix_id, *enc(tok, plan.prefix), tok.suffix_id]
    expected += [*nospace(plan.suffix), tok.middle_id, *nospace(plan.middle), tok.eot_id, tok.eos_token_id]
    assert ids == expected
    # prefix + middle + suffix decode back to the document (the pieces were cut at characters).
    pieces = enc(tok, plan.prefix) + nospace(plan.middle) + nospace(plan.suffix)
    assert tok.decode(pieces) == DOC


def test_spm_exact_ids(tok, nospace):
    seed, plan = first_plan("spm")
    ids, _ = apply_fim(tok, DOC, np.random.default_rng(seed), 1.0, 0.5)
    expected = [tok.bos_token_id, tok.prefix_id, tok.suffix_id, *nospace(plan.suffix), tok.middle_id]
    # prefix + middle is one piece (no token split at that boundary), with the prefix's leading space, as in
    # Code Llama's suffix-first prompt `<PRE> <SUF>{suf} <MID> {pre}`
    assert plan.prefix
    expected += [*enc(tok, plan.prefix + plan.middle), tok.eot_id, tok.eos_token_id]
    assert ids == expected
    assert plan.prefix + plan.middle + plan.suffix == DOC


def test_rate_zero_is_plain_clm(tok):
    rng = np.random.default_rng(0)
    for _ in range(20):
        ids, plan = apply_fim(tok, DOC, rng, 0.0, 0.5)
        assert plan.mode == "clm"
        assert ids == [tok.bos_token_id, *enc(tok, DOC), tok.eos_token_id]
        assert tok.decode(ids, skip_special_tokens=True) == DOC


def test_rates_are_respected_and_seeded(tok):
    modes = [plan_fim(DOC, rng, 0.9, 0.5).mode for rng in [np.random.default_rng(1)] for _ in range(4000)]
    counts = {m: modes.count(m) for m in ("clm", "psm", "spm")}
    assert 0.08 < counts["clm"] / 4000 < 0.12
    assert 0.40 < counts["spm"] / (counts["psm"] + counts["spm"]) < 0.60
    again = [plan_fim(DOC, rng, 0.9, 0.5) for rng in [np.random.default_rng(1)] for _ in range(50)]
    assert [p.mode for p in again] == modes[:50]


def test_short_documents(tok):
    rng = np.random.default_rng(0)
    for doc in ["", "x"]:
        ids, plan = apply_fim(tok, doc, rng, 1.0, 0.5)
        assert plan.mode == "clm"
        assert ids == [tok.bos_token_id, *enc(tok, doc), tok.eos_token_id]
    # Two characters can already be split (any of the three pieces may be empty).
    plans = {plan_fim("ab", np.random.default_rng(s), 1.0, 0.5) for s in range(50)}
    assert all(p.prefix + p.middle + p.suffix == "ab" for p in plans)
    assert {p.mode for p in plans} == {"psm", "spm"}


def test_assemble_without_eos_and_pieces_order(tok):
    plan = FimPlan("psm", "a", "b", "c")
    assert fim_pieces(plan) == [("a", True), ("c", False), ("b", False)]
    ids = assemble(plan, [[10], [11], [12]], fim_tokens(tok), add_eos=False)
    assert ids == [tok.bos_token_id, tok.prefix_id, 10, tok.suffix_id, 11, tok.middle_id, 12, tok.eot_id]
    # SPM: the prefix leads its piece and keeps the leading space; a middle alone never has it.
    assert fim_pieces(FimPlan("spm", "a", "b", "c")) == [("c", False), ("ab", True)]
    assert fim_pieces(FimPlan("spm", "", "b", "c")) == [("c", False), ("b", False)]


def test_psm_prompt(tok, nospace):
    ids = psm_prompt_ids(tok, "def f(", "):\n    pass\n")
    expected = [tok.bos_token_id, tok.prefix_id, *enc(tok, "def f(")]
    expected += [tok.suffix_id, *nospace("):\n    pass\n"), tok.middle_id]
    assert ids == expected


def test_spm_prompt_is_code_llamas_suffix_first_layout(tok, nospace):
    ids = spm_prompt_ids(tok, "def f(", "):\n    pass\n")
    expected = [tok.bos_token_id, tok.prefix_id, tok.suffix_id, *nospace("):\n    pass\n"), tok.middle_id]
    assert ids == [*expected, *enc(tok, "def f(")]  # `<PRE> <SUF>{suf} <MID> {pre}`
    assert spm_prompt_ids(tok, "", "x") == [
        tok.bos_token_id,
        tok.prefix_id,
        tok.suffix_id,
        *nospace("x"),
        tok.middle_id,
    ]
    assert infill_prompt_ids(tok, "a", "b", "spm") == spm_prompt_ids(tok, "a", "b")
    assert infill_prompt_ids(tok, "a", "b") == psm_prompt_ids(tok, "a", "b")
    with pytest.raises(ValueError, match="use psm or spm"):
        infill_prompt_ids(tok, "a", "b", "pms")


def test_starcoder_style_tokens():
    from tokenizers import Tokenizer, models

    vocab = {"<|endoftext|>": 0, "<fim_prefix>": 1, "<fim_middle>": 2, "<fim_suffix>": 3, "a": 4}
    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="a")))
    tok.eos_token = "<|endoftext|>"
    t = fim_tokens(tok)
    assert (t.prefix_id, t.suffix_id, t.middle_id, t.eot_id, t.bos_id, t.eos_id) == (1, 3, 2, 0, None, 0)


def test_tokenizer_without_fim_tokens_is_a_clear_error():
    from tokenizers import Tokenizer, models

    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"</s>": 0, "a": 1}, "a")))
    tok.eos_token = "</s>"
    with pytest.raises(ValueError, match="objective: clm"):
        fim_tokens(tok)
    ids, plan = apply_fim(tok, "aa", np.random.default_rng(0), 0.0, 0.5)  # CLM needs no FIM tokens
    assert plan.mode == "clm" and ids[-1] == 0
