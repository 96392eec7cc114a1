"""The tiny Code Llama–style tokenizer never merges across a newline, as Llama's SentencePiece does not.

A BPE that learns `:\\n▁▁▁▁` splits a token at the start of every line-aligned hole (the full document is
tokenized differently from prefix + middle + suffix), which Code Llama's tokenizer never does. Trained on
real code (this Python's standard library: local, no Flyte), the tokenizer must tokenize every line-aligned
cut exactly as the whole document, and survive a save/load round trip.
"""

from __future__ import annotations

import random
import sysconfig
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from training.fim import encode_piece
from training.tiny import build_tiny_tokenizer

STDLIB = Path(sysconfig.get_paths()["stdlib"])
# Fixed files of the standard library: indentation, decorators, docstrings, blank lines.
TRAIN_FILES = ("argparse.py", "dataclasses.py", "functools.py", "textwrap.py", "shlex.py", "enum.py")
HOLE_FILES = ("difflib.py", "fractions.py", "heapq.py", "ipaddress.py", "pprint.py")


def _read(names: tuple[str, ...], max_lines: int = 400) -> list[str]:
    """The first `max_lines` lines of each file (enough code, and fast to tokenize many times)."""
    texts = [(STDLIB / name).read_text(encoding="utf-8") for name in names]
    return ["".join(t.splitlines(keepends=True)[:max_lines]) for t in texts]


@pytest.fixture(scope="module")
def code_tokenizer():
    return build_tiny_tokenizer(_read(TRAIN_FILES), vocab_size=1024)


def line_aligned_holes(text: str, rng: random.Random, n: int) -> list[tuple[str, str, str]]:
    """`n` (prefix, middle, suffix) cuts of `text` at line starts, prefix non-empty (as in a real file)."""
    lines = text.splitlines(keepends=True)
    out = []
    for _ in range(n):
        i, j = sorted(rng.sample(range(1, len(lines) + 1), 2))
        out.append(("".join(lines[:i]), "".join(lines[i:j]), "".join(lines[j:])))
    return out


def test_no_vocabulary_entry_joins_a_newline_to_other_text(code_tokenizer):
    vocab = code_tokenizer.get_vocab()
    joined = sorted(t for t in vocab if "\n" in t and t != "\n")
    assert joined == []
    # Indentation stays cheap: runs of spaces are single tokens (what SentencePiece's Llama vocab has too).
    assert "▁▁▁▁" in vocab and "▁▁▁▁▁▁▁▁" in vocab
    assert len(code_tokenizer.encode("        return x", add_special_tokens=False)) <= 3


def test_line_aligned_holes_split_no_token(code_tokenizer):
    rng = random.Random(0)
    holes = [h for text in _read(HOLE_FILES, 150) for h in line_aligned_holes(text, rng, 40)]
    assert len(holes) == 200
    for prefix, middle, suffix in holes:
        whole = encode_piece(code_tokenizer, prefix + middle + suffix, leading_space=True)
        pieces = (
            encode_piece(code_tokenizer, prefix, leading_space=True)
            + encode_piece(code_tokenizer, middle, leading_space=False)
            + encode_piece(code_tokenizer, suffix, leading_space=False)
        )
        assert pieces == whole, (prefix[-40:], middle[:40])


def test_the_property_survives_save_and_load(code_tokenizer, tmp_path):
    # CodeLlamaTokenizer rebuilds its pre-tokenizer on load: the learned merges alone must carry it.
    code_tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    (text,) = _read(("heapq.py",), 150)
    assert loaded.encode(text, add_special_tokens=False) == code_tokenizer.encode(
        text, add_special_tokens=False
    )
    for prefix, middle, suffix in line_aligned_holes(text, random.Random(1), 30):
        whole = encode_piece(loaded, prefix + middle + suffix, leading_space=True)
        parts = [encode_piece(loaded, prefix, True), encode_piece(loaded, middle, False)]
        assert parts[0] + parts[1] + encode_piece(loaded, suffix, False) == whole


def test_same_texts_give_the_same_tokenizer():
    texts = _read(TRAIN_FILES[:2])
    a, b = build_tiny_tokenizer(texts, 600), build_tiny_tokenizer(texts, 600)
    assert a.get_vocab() == b.get_vocab()
