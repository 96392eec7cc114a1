"""bench/fim_coverage.py: how much of a split FIM cannot reach when only one-context documents get FIM."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from training.prepare import Preparer
from training.tiny import build_tiny_tokenizer


def _script():
    path = Path(__file__).parents[1] / "bench" / "fim_coverage.py"
    spec = importlib.util.spec_from_file_location("fim_coverage", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_coverage_counts_long_documents_as_the_preparer_cuts_them():
    short, long = "x = 1\n" * 10, "def f():\n    return 1\n\n\n" * 400
    c = _script().coverage([short, long, short], ["python"] * 3, max_length=256)
    examples = Preparer(build_tiny_tokenizer(), 256, 0.9, 0.5).chunk([short, long, short], ["python"] * 3)
    assert c["sequences"] == len(examples) and c["documents"] == 3 and c["long_documents"] == 1
    assert c["long_sequences"] == len(examples) - 2 and c["continuations"] == c["long_sequences"] - 1
    assert c["long_characters_share"] == len(long) / (len(long) + 2 * len(short))
