"""Corpus loading, chunking at definition/line/character boundaries, and prepared sequences (FIM + EOS)."""

from __future__ import annotations

import itertools
import json
import random

import numpy as np
import pytest

from training.__main__ import main
from training.data import chunk_spans, definition_starts, line_starts, load_corpus, write_corpus_folder
from training.fim import decode_piece, encode_piece
from training.prepare import Preparer, iter_examples, prepare_split
from training.tiny import build_tiny_tokenizer


def python_doc(i: int, defs: int) -> str:
    body = "".join(
        f"@task\ndef fn_{i}_{j}(a: int, b: int) -> int:\n"
        f"    '''Add {j}.'''\n    c = a + b * {j}\n    return c\n\n\n"
        for j in range(defs)
    )
    return f"import os\n\n\n{body}class Holder{i}:\n    value = {i}\n"


def make_corpus(folder, n_train: int = 120, n_val: int = 12):
    """A dataset folder in the §2 layout: Python files of varied length plus a few Go ones."""
    rng = random.Random(0)

    def row(i):
        if i % 10 == 9:
            text = f'package main\n\nimport "fmt"\n\nfunc f{i}() {{\n\tfmt.Println("{i}")\n}}\n'
            return {"content": text, "language": "go", "repo": "flyte", "path": f"go/f{i}.go"}
        text = python_doc(i, rng.randint(1, 12))
        return {"content": text, "language": "python", "repo": "flytekit", "path": f"f{i}.py"}

    splits = {
        "train": [row(i) for i in range(n_train)],
        "validation": [row(i) for i in range(n_train, n_train + n_val)],
        "test": [row(i) for i in range(n_train + n_val, n_train + 2 * n_val)],
    }
    return write_corpus_folder(folder, splits)


@pytest.fixture(scope="module")
def tok():
    return build_tiny_tokenizer([python_doc(i, 5) for i in range(30)], vocab_size=400)


def assert_covers(text, spans, max_chars):
    """Spans are consecutive, non-empty, within `max_chars`, and concatenate back to the document."""
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    assert all(a < b <= a + max_chars for a, b in spans)
    assert all(b == a2 for (_, b), (a2, _) in itertools.pairwise(spans))
    assert "".join(text[a:b] for a, b in spans) == text


def test_chunks_prefer_top_level_definitions():
    text = python_doc(0, 12)
    max_chars = 300
    spans = chunk_spans(text, "python", max_chars)
    assert len(spans) > 2
    assert_covers(text, spans, max_chars)
    defs = definition_starts(text, "python")
    for a, b in spans[:-1]:
        assert b in defs, repr(text[b : b + 30])  # at a decorated def (or another top-level statement)
        # greedy: the next top-level statement would not have fit
        assert not [d for d in defs if b < d <= a + max_chars]
    assert text[spans[1][0] :].startswith("@task\ndef ")


def test_chunks_fall_back_to_lines_then_characters():
    text = "".join(f"value_{i} = {i} * 2\n" for i in range(200))
    spans = chunk_spans(text, "unknown-language", 50)
    assert_covers(text, spans, 50)
    starts = line_starts(text)
    for a, b in spans[:-1]:
        assert b in starts and not [s for s in starts if b < s <= a + 50]  # the last line start that fits
    # A broken Python file does not parse: lines again, never a crash.
    assert definition_starts("def broken(:\n", "python") == []
    broken = "def broken(:\n" + text
    assert all(broken[b - 1] == "\n" for _, b in chunk_spans(broken, "python", 50)[:-1])
    # One line longer than a chunk: cut inside it, after a space where there is one, else anywhere.
    words = "word " * 100
    spans = chunk_spans(words, "python", 42)
    assert_covers(words, spans, 42)
    assert all(words[b - 1] == " " for _, b in spans[:-1])
    one_word = "x" * 3000
    spans = chunk_spans(one_word, "python", 40)
    assert_covers(one_word, spans, 40)
    assert [b - a for a, b in spans] == [40] * 75
    assert chunk_spans("", "python", 40) == [(0, 0)]


def test_definition_starts_count_characters_not_bytes():
    text = "s = 'ŋŋŋ'\n\n\ndef f():\n    pass\n"
    assert definition_starts(text, "python") == [0, text.index("def")]


def test_prepared_sequences_fit_and_end_with_eos(tok):
    # "ŋ" * 500 is one line of characters that the tiny tokenizer spends several tokens on: it must be cut
    # inside the line, and (denser than the estimate) split again after encoding.
    docs = [python_doc(i, i % 15 + 1) for i in range(40)] + ["", "x", "ŋ" * 500]
    preparer = Preparer(tok, max_length=96, fim_rate=0.9, spm_rate=0.5)
    examples = list(iter_examples(preparer, docs, ["python"] * len(docs), np.random.default_rng(0), 8))
    assert all(len(e.input_ids) <= 96 for e in examples)
    # A document's sequences: BOS opens only its first, EOS closes only its last; FIM only in one piece.
    for doc in range(len(docs)):
        seqs = [e for e in examples if e.doc_index == doc]
        assert [s.input_ids[0] == tok.bos_token_id for s in seqs] == [True] + [False] * (len(seqs) - 1)
        assert [s.input_ids[-1] == tok.eos_token_id for s in seqs] == [False] * (len(seqs) - 1) + [True]
        assert len(seqs) == 1 or all(s.mode == "clm" for s in seqs)
    dense = [e for e in examples if e.doc_index == len(docs) - 1]
    assert any(e.char_cut for e in dense) and any(e.resplit for e in dense)
    assert {e.mode for e in examples} == {"clm", "psm", "spm"}
    assert {e.doc_index for e in examples} == set(range(len(docs)))
    again = list(iter_examples(preparer, docs, ["python"] * len(docs), np.random.default_rng(0), 8))
    assert [e.input_ids for e in again] == [e.input_ids for e in examples]
    other = list(iter_examples(preparer, docs, ["python"] * len(docs), np.random.default_rng(1), 8))
    assert [e.input_ids for e in other] != [e.input_ids for e in examples]


def test_clm_chunks_reassemble_the_document(tok):
    docs = [python_doc(i, 10) for i in range(3)]
    preparer = Preparer(tok, max_length=64, fim_rate=0.0, spm_rate=0.5)
    examples = list(iter_examples(preparer, docs, ["python"] * 3, np.random.default_rng(0)))
    for i, doc in enumerate(docs):
        chunks = [e for e in examples if e.doc_index == i]
        assert len(chunks) > 1
        assert "".join(e.plan.prefix for e in chunks) == doc  # CLM: the plan's prefix is the chunk's text
        for k, e in enumerate(chunks):
            # each chunk is tokenized on its own, so no token straddles a cut; a continuation has no BOS and
            # no file-start space, only the last chunk ends with EOS
            first, last = k == 0, k == len(chunks) - 1
            body = encode_piece(tok, e.plan.prefix, leading_space=first)
            bos, eos = [tok.bos_token_id] * first, [tok.eos_token_id] * last
            assert e.input_ids == [*bos, *body, *eos]
            assert decode_piece(tok, body) == (" " if first else "") + e.plan.prefix


def test_load_corpus_and_errors(tmp_path):
    folder = make_corpus(tmp_path / "corpus", 10, 2)
    corpus = load_corpus(str(folder), splits=("train", "validation"))
    assert len(corpus["train"]) == 10 and set(corpus) == {"train", "validation", "test"}
    with pytest.raises(ValueError, match="--dataset"):
        load_corpus("")
    with pytest.raises(ValueError, match="no 'dev' split"):
        load_corpus(str(folder), splits=("dev",))
    bad = write_corpus_folder(tmp_path / "bad", {"train": [{"text": "x"}]})
    with pytest.raises(ValueError, match="lacks columns"):
        load_corpus(str(bad))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="not a dataset folder"):
        load_corpus(str(tmp_path / "empty"))


def test_prepare_split_counts(tmp_path, tok):
    corpus = load_corpus(str(make_corpus(tmp_path / "corpus", 30, 2)))
    ds, stats = prepare_split(corpus["train"], Preparer(tok, 128, 0.5, 0.5), seed=0, limit=20)
    assert stats.documents == 20 and stats.chunks == len(ds) >= 20
    assert stats.tokens == sum(len(x) for x in ds["input_ids"])
    # An estimate of far more characters per token than the text has: chunks are split again, and counted.
    ds, dense = prepare_split(corpus["train"], Preparer(tok, 128, 0.5, 0.5, 20.0), seed=0, limit=20)
    assert dense.resplit > stats.resplit and max(len(x) for x in ds["input_ids"]) <= 128


def test_prepare_dump_cli(tmp_path, capsys):
    folder = make_corpus(tmp_path / "corpus", 60, 4)
    out = tmp_path / "dump.jsonl"
    assert main(["prepare", "--recipe", "tiny", "--dataset", str(folder), "--dump", "3", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["mode"] for r in rows) == ["clm", "psm", "spm"]
    for r in rows:
        assert r["segments"][0] == "<BOS>" and r["segments"][-1] == "<EOS>"
        assert len(r["input_ids"]) == r["num_tokens"] <= 256
        # Segments decode exactly to the pieces (leading-space pieces with SentencePiece's one space): the
        # ids hold the text, token boundaries lose nothing.
        prefix, middle, suffix = (r["pieces"][k] for k in ("prefix", "middle", "suffix"))
        body = [x for x in r["segments"][1:] if x not in ("<EOT>", "<EOS>")]

        def spaced(text: str) -> str:  # the tiny tokenizer's Metaspace(prepend_scheme="first")
            return text if not text or text.startswith(" ") else " " + text

        expected = {
            "psm": ["<PRE>", spaced(prefix), "<SUF>", suffix, "<MID>", middle],
            "spm": ["<PRE>", "<SUF>", suffix, "<MID>", spaced(prefix) + middle],
            "clm": [spaced(prefix)],
        }[r["mode"]]
        assert body == [x for x in expected if x]  # an empty piece has no segment
        if r["mode"] != "clm":
            assert r["segments"][-2] == "<EOT>"
    assert "wrote 3 examples" in capsys.readouterr().out
