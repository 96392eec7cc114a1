"""The batched Preparer gives exactly the ids of preparing each document on its own.

`reference_prepare` below is the spec: one tokenizer call per document (for chunking) and per FIM piece
(`encode_piece`), with the Preparer's order of random draws (all chunks of a batch are planned first; a
chunk that FIM made too long is halved and prepared afterwards). The batched path (count-first encoding,
the Rust backend's ids-only calls, a worker thread chunking the next batch) must match it id for id.
"""

from __future__ import annotations

import copy
import random

import numpy as np
import pytest

from training.data import chunk_spans
from training.fim import assemble, encode_batch, encode_piece, encode_pieces, fim_pieces, fim_tokens, plan_fim
from training.prepare import COUNT_FIRST, Preparer, iter_examples
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


def reference_prepare(tok, texts, languages, rng, max_length, budget, fim_rate, spm_rate):
    """One batch, one document and one piece at a time → [(input_ids, mode, doc index)]."""
    tokens = fim_tokens(tok)
    chunks = []  # (doc, text, ids of the chunk when the document had to be tokenized to be cut)
    for doc, text in enumerate(texts):
        enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
        if len(enc["input_ids"]) <= budget:
            chunks.append((doc, text, None if len(text.encode()) + 1 <= budget else enc["input_ids"]))
            continue
        for c in chunk_spans(text, languages[doc], enc["offset_mapping"], budget):
            chunks.append((doc, text[c.start : c.end], enc["input_ids"][c.token_start : c.token_end]))
    plans = [plan_fim(text, rng, fim_rate, spm_rate) for _, text, _ in chunks]
    out = []
    for plan, (doc, text, ids) in zip(plans, chunks, strict=True):
        if plan.mode == "clm" and ids is not None:
            pieces = [ids]
        else:
            pieces = [encode_piece(tok, piece, space) for piece, space in fim_pieces(plan)]
        input_ids = assemble(plan, pieces, tokens)
        if len(input_ids) <= max_length:
            out.append((input_ids, plan.mode, doc))
            continue
        enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
        half = max(16, (len(enc["input_ids"]) + 1) // 2)
        parts = [
            text[c.start : c.end] for c in chunk_spans(text, languages[doc], enc["offset_mapping"], half)
        ]
        again = reference_prepare(
            tok, parts, [languages[doc]] * len(parts), rng, max_length, budget, fim_rate, spm_rate
        )
        out.extend((ids, mode, doc) for ids, mode, _ in again)
    return out


@pytest.mark.parametrize(
    ("max_length", "slack", "seed"),
    [(64, None, 0), (128, None, 1), (256, None, 2), (48, 4, 3), (96, 6, 4)],
)
def test_batched_matches_reference(tok, monkeypatch, max_length, slack, seed):
    rng = random.Random(seed)
    texts = [random_doc(rng) for _ in range(300)]
    languages = [rng.choice(["python", "go", "markdown"]) for _ in texts]
    fim_rate, spm_rate = 0.9, 0.5
    preparer = Preparer(tok, max_length, fim_rate, spm_rate)
    if slack is not None:  # less slack than FIM can add: exercises the halving of chunks that overflow
        preparer.budget = max_length - slack
    halvings = []
    split_again = preparer._split_again
    monkeypatch.setattr(preparer, "_split_again", lambda *a: halvings.append(a) or split_again(*a))
    batch = 32
    got = [
        (e.input_ids, e.mode, e.doc_index)
        for e in iter_examples(preparer, texts, languages, np.random.default_rng(seed), batch)
    ]
    expected, reference_rng = [], np.random.default_rng(seed)
    for start in range(0, len(texts), batch):
        for ids, mode, doc in reference_prepare(
            tok,
            texts[start : start + batch],
            languages[start : start + batch],
            reference_rng,
            max_length,
            preparer.budget,
            fim_rate,
            spm_rate,
        ):
            expected.append((ids, mode, start + doc))
    assert got == expected
    assert {mode for _, mode, _ in got} == {"clm", "psm", "spm"}
    # Every chunking path ran: short documents, counted-first ones that fit, and ones cut with offsets.
    sizes = [len(t.encode()) + 1 for t in texts]
    assert any(preparer.budget < n <= COUNT_FIRST * preparer.budget for n in sizes)
    assert any(n > COUNT_FIRST * preparer.budget for n in sizes)
    assert len(got) > len(texts) - texts.count("")
    assert bool(halvings) == (slack is not None)


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
