"""Corpus loading, chunking at definition/line/token boundaries, and prepared sequences (FIM + EOS)."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from training.__main__ import main
from training.data import chunk_spans, definition_starts, load_corpus, write_corpus_folder
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


def encode(tok, text):
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    return enc["input_ids"], enc["offset_mapping"]


def assert_clean_cuts(text, offsets, chunks, budget):
    assert "".join(text[c.start : c.end] for c in chunks) == text
    assert chunks[0].token_start == 0 and chunks[-1].token_end == len(offsets)
    for c in chunks:
        assert 0 < c.token_end - c.token_start <= budget
    for c in chunks[1:]:
        # no token straddles the cut
        assert all(not (s < c.start < e) for s, e in offsets), c.start
        assert offsets[c.token_start][0] == c.start


def test_chunks_prefer_top_level_definitions(tok):
    text = python_doc(0, 12)
    _, offsets = encode(tok, text)
    budget = 80
    chunks = chunk_spans(text, "python", offsets, budget)
    assert len(chunks) > 2
    assert_clean_cuts(text, offsets, chunks, budget)
    defs = set(definition_starts(text, "python"))
    for c in chunks[1:]:
        # at a decorated def (or just before it, when its newline merged into the previous token)
        assert any(0 <= d - c.start <= 2 for d in defs), repr(text[c.start : c.start + 30])


def test_chunks_fall_back_to_lines_then_tokens(tok):
    text = "".join(f"value_{i} = {i} * 2\n" for i in range(200))
    _, offsets = encode(tok, text)
    chunks = chunk_spans(text, "unknown-language", offsets, 50)
    assert_clean_cuts(text, offsets, chunks, 50)
    assert all(text[c.start - 1] == "\n" for c in chunks[1:])
    # A broken Python file does not parse: lines again, never a crash.
    assert definition_starts("def broken(:\n", "python") == []
    one_line = "x" * 3000
    _, offsets = encode(tok, one_line)
    assert_clean_cuts(one_line, offsets, chunk_spans(one_line, "python", offsets, 40), 40)


def test_definition_starts_count_characters_not_bytes():
    text = "s = 'ŋŋŋ'\n\n\ndef f():\n    pass\n"
    assert definition_starts(text, "python") == [0, text.index("def")]


def test_prepared_sequences_fit_and_end_with_eos(tok):
    docs = [python_doc(i, i % 15 + 1) for i in range(40)] + ["", "x", "ŋ" * 500]
    preparer = Preparer(tok, max_length=96, fim_rate=0.9, spm_rate=0.5)
    examples = list(iter_examples(preparer, docs, ["python"] * len(docs), np.random.default_rng(0), 8))
    assert all(len(e.input_ids) <= 96 and e.input_ids[-1] == tok.eos_token_id for e in examples)
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
        ids = [t for e in examples if e.doc_index == i for t in e.input_ids[1:-1]]  # drop BOS/EOS
        assert len([e for e in examples if e.doc_index == i]) > 1
        assert tok.decode(ids) == doc
        assert ids == tok.encode(doc, add_special_tokens=False)  # the document's own tokens, never re-split


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


def test_prepare_dump_cli(tmp_path, capsys):
    folder = make_corpus(tmp_path / "corpus", 60, 4)
    out = tmp_path / "dump.jsonl"
    assert main(["prepare", "--recipe", "tiny", "--dataset", str(folder), "--dump", "3", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["mode"] for r in rows) == ["clm", "psm", "spm"]
    for r in rows:
        assert r["segments"][0] == "<BOS>" and r["segments"][-1] == "<EOS>"
        assert len(r["input_ids"]) == r["num_tokens"] <= 256
        if r["mode"] == "psm":
            assert r["segments"][1] == "<PRE>" and "<SUF>" in r["segments"] and r["segments"][-2] == "<EOT>"
        if r["mode"] == "spm":
            assert r["segments"][1:3] == ["<PRE>", "<SUF>"]
    assert "wrote 3 examples" in capsys.readouterr().out
