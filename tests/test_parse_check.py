"""pipeline.parse_check: the `parses` column, computed in a worker pool over byte-balanced slices."""

from __future__ import annotations

import pytest

from dataset_builder.config import load_config
from dataset_builder.pipeline import byte_slices, parse_check
from dataset_builder.record import Record, record_id
from flyte_llama_common.treesitter import parses


@pytest.mark.parametrize(
    ("sizes", "slices", "bounds"),
    [
        ([1] * 8, 4, [(0, 2), (2, 4), (4, 6), (6, 8)]),
        ([5, 1, 1, 1, 1, 1], 2, [(0, 1), (1, 6)]),  # the first item is half the bytes on its own
        ([1, 1, 1, 1, 6], 2, [(0, 5)]),  # the last item holds most bytes: one slice, none empty
        ([3, 3, 3], 8, [(0, 1), (1, 2), (2, 3)]),  # more slices than items
        ([2, 0, 0, 2], 2, [(0, 1), (1, 4)]),
        ([], 4, []),
    ],
)
def test_byte_slices_are_contiguous_balanced_and_never_empty(sizes, slices, bounds) -> None:
    assert byte_slices(sizes, slices) == bounds


def _record(i: int, language: str, content: str) -> Record:
    path = f"src/f{i:04d}.{'py' if language == 'python' else 'go'}"
    return Record(
        id=record_id("flytekit", path), repo="flytekit", path=path, language=language, content=content,
        bytes=len(content), lines=content.count("\n"), commit_sha="0" * 40, blob_sha="0" * 40,
        license="Apache-2.0", split="train", is_test=False, is_doc=False, is_notebook=False, parses=None,
    )  # fmt: skip


def test_pooled_parse_check_matches_parsing_each_file() -> None:
    """Over 1 MB, so the pool path runs (16 slices for 2 workers); results stay in record order."""
    good_py = "def f(x):\n    return x + 1\n" * 400
    bad_py = good_py + "def g(:\n"
    good_go = "package main\n\nfunc main() {\n\tprintln(1)\n}\n" * 300
    bad_go = good_go + "func (\n"
    kinds = [("python", good_py), ("python", bad_py), ("go", good_go), ("go", bad_go)]
    records = [_record(i, *kinds[(i * 7) % 4]) for i in range(120)]
    assert sum(len(r.content) for r in records) > 1_000_000
    parsed = parse_check(records, load_config(None, []), cache_dir=None, workers=2)
    assert parsed == len(records)
    assert [r.parses for r in records] == [parses(r.language, r.content) for r in records]
    assert {r.parses for r in records} == {True, False}
