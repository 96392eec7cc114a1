"""The batched Preparer gives exactly the ids of preparing each document on its own.

`reference_prepare` below is the spec: each document cut in its text (`chunk_text`), one tokenizer call per
FIM piece (`encode_piece`), with the Preparer's order of random draws (all chunks of a batch are planned
first; a chunk whose encoding is too long is halved and prepared afterwards). The batched path (two
batched calls per batch, the Rust backend's ids-only calls, a worker thread chunking the next batch) must
match it id for id.
"""

from __future__ import annotations

import copy
import random

import numpy as np
import pytest

from training.data import chunk_text
from training.fim import (
    FimPlan,
    assemble,
    encode_batch,
    encode_piece,
    encode_pieces,
    fim_pieces,
    fim_tokens,
    plan_fim,
)
from training.prepare import Preparer, PrepareStats, iter_examples
from training.tiny import build_tiny_tokenizer

SNIPPETS = [
    "def f(a, b):\n    return a + b\n",
    "class Holder:\n    value = 1\n\n\n",
    "    x = [i * 2 for i in range(10)]\n",
    "import os\nfrom flytekit import task, workflow\n",
    "# ŋ unicode ☺ comment — ünïcödé 🚀\n",
    'func main() {\n\tfmt.Println("hi")\n}\n',
    "          \n\n\t\t",
    "</s> <s> literal special tokens\n",
    "x" * 37,
    "@task\ndef add(a: int, b: int) -> int:\n    '''Add.'''\n    return a + b\n",
]


def random_doc(rng: random.Random) -> str:
    """Mostly code-like text of widely varied length (empty to ~40 snippets), sometimes cut mid-line."""
    n = rng.choice([0, 1, 2, 3, 5, 8, 13, 21, 40])
    text = "".join(rng.choice(SNIPPETS) for _ in range(n))
    if text and rng.random() < 0.3:
        text = text[: rng.randrange(len(text))]
    return text


@pytest.fixture(scope="module")
def tok():
    rng = random.Random(1)
    return build_tiny_tokenizer([random_doc(rng) for _ in range(300)], vocab_size=400)


def in_line_flags(parts, first=False):
    """Whether each part starts inside a line of the text the parts were cut from."""
    return [first] + [previous[-1] != "\n" for previous in parts[:-1]]


def reference_prepare(
    tok, texts, languages, rng, max_length, max_chars, fim_rate, spm_rate, in_line=None, ends=None
):
    """One batch, one document and one piece at a time → [(input_ids, mode, doc index, starts in a line)].
    `in_line`: whether each text itself starts inside a line (for the halves of a chunk); `ends`: whether each
    text starts / ends its document (default: every text is a whole document)."""
    tokens = fim_tokens(tok)
    chunks = []  # (doc, text, starts inside a line, starts the document, ends the document)
    for doc, text in enumerate(texts):
        parts = chunk_text(text, languages[doc], max_chars)
        flags = in_line_flags(parts, bool(in_line and in_line[doc]))
        first, last = ends[doc] if ends else (True, True)
        for k, (part, flag) in enumerate(zip(parts, flags, strict=True)):
            chunks.append((doc, part, flag, first and k == 0, last and k == len(parts) - 1))
    # Only a document in one piece may become FIM, and only it draws random numbers.
    plans = [
        plan_fim(text, rng, fim_rate, spm_rate) if first and last else FimPlan("clm", text, "", "")
        for _, text, _, first, last in chunks
    ]
    out = []
    for plan, (doc, text, flag, first, last) in zip(plans, chunks, strict=True):
        pieces = fim_pieces(plan) if first and last else [(text, first)]
        encoded = [encode_piece(tok, piece, space) for piece, space in pieces]
        input_ids = assemble(plan, encoded, tokens, add_eos=last, add_bos=first)
        if len(input_ids) <= max_length:
            out.append((input_ids, plan.mode, doc, flag))
            continue
        halves = chunk_text(text, languages[doc], (len(text) + 1) // 2)
        again = reference_prepare(
            tok,
            halves,
            [languages[doc]] * len(halves),
            rng,
            max_length,
            max_chars,
            fim_rate,
            spm_rate,
            in_line_flags(halves, flag),
            [(first and k == 0, last and k == len(halves) - 1) for k in range(len(halves))],
        )
        out.extend((ids, mode, doc, cut) for ids, mode, _, cut in again)
    return out


@pytest.mark.parametrize(
    ("max_length", "chars_per_token", "seed"),
    [(64, 3.0, 0), (128, 3.0, 1), (256, 2.0, 2), (48, 8.0, 3), (96, 6.0, 4)],
)
def test_batched_matches_reference(tok, monkeypatch, max_length, chars_per_token, seed):
    rng = random.Random(seed)
    # The last document is one line longer than a chunk: it must be cut inside the line.
    texts = [random_doc(rng) for _ in range(300)] + ["word " * 500]
    languages = [rng.choice(["python", "go", "markdown"]) for _ in texts]
    fim_rate, spm_rate = 0.9, 0.5
    preparer = Preparer(tok, max_length, fim_rate, spm_rate, chars_per_token)
    halvings = []
    split_again = preparer._split_again
    monkeypatch.setattr(preparer, "_split_again", lambda *a: halvings.append(a) or split_again(*a))
    batch = 32
    examples = list(iter_examples(preparer, texts, languages, np.random.default_rng(seed), batch))
    got = [(e.input_ids, e.mode, e.doc_index, e.char_cut) for e in examples]
    expected, reference_rng = [], np.random.default_rng(seed)
    for start in range(0, len(texts), batch):
        for ids, mode, doc, in_line in reference_prepare(
            tok,
            texts[start : start + batch],
            languages[start : start + batch],
            reference_rng,
            max_length,
            preparer.max_chars,
            fim_rate,
            spm_rate,
        ):
            expected.append((ids, mode, start + doc, in_line))
    assert got == expected
    assert {e.mode for e in examples} == {"clm", "psm", "spm"}
    # Every path ran: documents kept whole, documents cut, and chunks cut again after encoding.
    assert any(0 < len(t) <= preparer.max_chars for t in texts)
    assert any(len(t) > preparer.max_chars for t in texts)
    assert halvings
    stats = PrepareStats()
    for e in examples:
        stats.add(e)
    assert stats.resplit >= 2 * len(halvings)  # each halving makes at least two sequences
    assert stats.char_cuts == sum(flag for *_, flag in expected) > 0


def test_encode_pieces_matches_encode_piece(tok):
    rng = random.Random(7)
    texts = [random_doc(rng)[: rng.randrange(1, 200)] for _ in range(200)] + ["", " ", "☺", "\n"]
    for space in (True, False):
        assert encode_pieces(tok, texts, space) == [encode_piece(tok, t, space) for t in texts]
    assert encode_batch(tok, texts) == tok(texts, add_special_tokens=False)["input_ids"]
    assert encode_pieces(tok, [], False) == []


def test_backend_state_falls_back_to_transformers(tok):
    """A backend left with truncation on (or special tokens split) is not called directly."""
    truncated = copy.deepcopy(tok)
    truncated.backend_tokenizer.enable_truncation(4)
    texts = ["def f(a, b):\n    return a + b\n", "</s> x"]
    assert encode_batch(truncated, texts) == tok(texts, add_special_tokens=False)["input_ids"]
    split = copy.deepcopy(tok)
    split.split_special_tokens = True
    assert encode_batch(split, texts) == split(texts, add_special_tokens=False)["input_ids"]
    assert encode_batch(split, texts) != encode_batch(tok, texts)
