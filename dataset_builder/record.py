"""The one record type that flows through the corpus builder.

Every stage takes records and returns records (plus counts of what it dropped and why).
The Parquet columns of the published dataset are exactly the fields of :class:`Record`,
in declaration order, so `load_dataset("<org>/flyte-llama-corpus")` rows look like this.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields

import pyarrow as pa

SPLITS = ("train", "validation", "test")


@dataclass
class Record:
    """One source file of one repo at one pinned commit."""

    id: str  # stable across corpus versions: sha1("<repo>:<path>"), see record_id()
    repo: str  # short repo name, e.g. "flytekit"
    path: str  # path inside the repo, "/"-separated
    language: str  # lowercase language name, e.g. "python", "go", "typescript", "markdown"
    content: str  # UTF-8 text (notebooks: converted to percent-format script, outputs dropped)
    bytes: int  # len(content.encode("utf-8"))
    lines: int  # number of lines of content
    commit_sha: str  # full SHA of the pinned commit the file was read at
    blob_sha: str  # git blob SHA of the original file (before any conversion or redaction)
    license: str  # SPDX id of the repo's license, e.g. "Apache-2.0"
    split: str  # "train" | "validation" | "test"
    is_test: bool  # path looks like a test (tests/, *_test.go, test_*.py, *.spec.ts, ...)
    is_doc: bool  # documentation (markdown, rst, docs/ folders, notebooks)
    is_notebook: bool  # converted from .ipynb
    parses: bool | None  # tree-sitter parsed it without errors; None when no grammar applies
    redactions: int = 0  # secrets/PII replaced by placeholders in this file


def record_id(repo: str, path: str) -> str:
    """Stable id: the same file keeps its id across corpus versions, so versions can be diffed."""
    return hashlib.sha1(f"{repo}:{path}".encode()).hexdigest()


def count_lines(text: str) -> int:
    if not text:
        return 0
    return text.count("\n") + (0 if text.endswith("\n") else 1)


ARROW_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("repo", pa.string()),
        ("path", pa.string()),
        ("language", pa.string()),
        ("content", pa.string()),
        ("bytes", pa.int64()),
        ("lines", pa.int64()),
        ("commit_sha", pa.string()),
        ("blob_sha", pa.string()),
        ("license", pa.string()),
        ("split", pa.string()),
        ("is_test", pa.bool_()),
        ("is_doc", pa.bool_()),
        ("is_notebook", pa.bool_()),
        ("parses", pa.bool_()),
        ("redactions", pa.int32()),
    ]
)

assert [f.name for f in fields(Record)] == ARROW_SCHEMA.names, "Record and ARROW_SCHEMA must agree"


FIELD_NAMES = tuple(ARROW_SCHEMA.names)


def records_to_table(records: list[Record]) -> pa.Table:
    """Records → Arrow table with the published schema (column order = Record field order)."""
    columns = {name: [getattr(r, name) for r in records] for name in FIELD_NAMES}
    return pa.Table.from_pydict(columns, schema=ARROW_SCHEMA)


def table_to_records(table: pa.Table) -> list[Record]:
    return [Record(**row) for row in table.to_pylist()]
