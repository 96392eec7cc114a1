"""A lexical retrieval index over the train split: chunks at definition boundaries, BM25 (bm25s) over
code-aware tokens, saved as a folder of JSON and NumPy arrays (no pickles) and loaded in milliseconds.

    folder = build_index("corpus/", "corpus_retrieval")      # or build_index(rows, out)
    retriever = Retriever.load(folder)
    hits = retriever.top_k(query_text(prefix, suffix), k=5, exclude=("flytekit", "flytekit/core/task.py"))

Chunks are the top-level definitions (functions, classes, methods' enclosing types, declarations) of files
tree-sitter parses, with the lines between them grouped; definitions longer than `max_lines` and files of
languages without a grammar are cut into fixed line windows. The query is the code around the hole, as
CrossCodeEval and RepoCoder build it: the last lines of the prefix (and, for infilling, the first of the
suffix).
"""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from flyte_llama_common.atomic import staged_dir
from flyte_llama_common.treesitter import parse_tree

INDEX_VERSION = 1
CHUNKS_FILE = "chunks.jsonl"
META_FILE = "retrieval.json"
BM25_DIR = "bm25"
MAX_LINES = 30  # longer definitions are windowed: several chunks must fit a budget of a few hundred tokens
QUERY_PREFIX_LINES = 10
QUERY_SUFFIX_LINES = 5
# Top-level node types that start a chunk; anything else (imports, assignments) joins its neighbours.
DEFINITIONS = {
    "python": {"function_definition", "class_definition", "decorated_definition"},
    "go": {"function_declaration", "method_declaration", "type_declaration"},
    "typescript": {"function_declaration", "class_declaration", "interface_declaration", "export_statement"},
    "tsx": {"function_declaration", "class_declaration", "interface_declaration", "export_statement"},
    "javascript": {"function_declaration", "class_declaration", "export_statement"},
    "protobuf": {"message", "service", "enum"},
}
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9]+")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z]|[0-9]|$)|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


@dataclass(frozen=True)
class Chunk:
    """A span of one train file: `start_line`/`end_line` are 1-based and inclusive."""

    repo: str
    path: str
    language: str
    start_line: int
    end_line: int
    text: str


def code_tokens(text: str) -> list[str]:
    """Lower-cased identifiers and numbers, plus the snake_case and camelCase pieces of each identifier
    (`get_parser` → get_parser, get, parser; `TaskEnvironment` → taskenvironment, task, environment)."""
    out: list[str] = []
    for word in _WORD.findall(text):
        out.extend(_word_tokens(word))
    return out


@lru_cache(maxsize=1 << 18)
def _word_tokens(word: str) -> tuple[str, ...]:
    # Code repeats its identifiers: splitting each distinct one once makes indexing several times faster.
    pieces = [p.lower() for part in word.split("_") for p in _CAMEL.findall(part)]
    return (word.lower(), *pieces) if len(pieces) > 1 else (word.lower(),)


def _windows(first: int, last: int, size: int) -> list[tuple[int, int]]:
    """0-based inclusive row ranges of at most `size` rows covering first..last."""
    return [(lo, min(lo + size - 1, last)) for lo in range(first, last + 1, size)]


def chunk_spans(language: str, content: str, max_lines: int = MAX_LINES) -> list[tuple[int, int]]:
    """0-based inclusive row ranges of the chunks of one file (blank-only ranges dropped)."""
    lines = content.split("\n")
    kinds = DEFINITIONS.get(language)
    tree = parse_tree(language, content) if kinds else None
    starts: list[int] = []
    if tree is not None:
        for node in tree.root_node.children:
            if node.type in kinds:
                row = node.start_point.row
                prev = node.prev_sibling  # a comment or decorator right above a definition belongs to it
                while prev is not None and prev.type == "comment" and prev.end_point.row == row - 1:
                    row, prev = prev.start_point.row, prev.prev_sibling
                starts.append(row)
    bounds = sorted({0, *starts, len(lines)})
    spans: list[tuple[int, int]] = []
    for lo, hi in itertools.pairwise(bounds):
        spans += _windows(lo, hi - 1, max_lines)
    out = []
    for a, b in spans:
        while b >= a and not lines[b].strip():  # trailing blank rows carry nothing to match
            b -= 1
        if b >= a:
            out.append((a, b))
    return out


def chunk_file(row: Mapping[str, Any], max_lines: int = MAX_LINES) -> list[Chunk]:
    """The chunks of one corpus row (repo, path, language, content)."""
    content = row["content"]
    lines = content.split("\n")
    return [
        Chunk(
            row["repo"],
            row["path"],
            row["language"],
            a + 1,
            b + 1,
            "\n".join(lines[a : b + 1]).rstrip() + "\n",
        )
        for a, b in chunk_spans(row["language"], content, max_lines)
    ]


def query_text(
    prefix: str,
    suffix: str | None = None,
    prefix_lines: int = QUERY_PREFIX_LINES,
    suffix_lines: int = QUERY_SUFFIX_LINES,
) -> str:
    """The retrieval query of a hole: the last `prefix_lines` lines of the prefix (the line being written
    included) and, for infilling, the first `suffix_lines` of the suffix."""
    head = "\n".join(prefix.split("\n")[-prefix_lines:])
    tail = "\n".join(suffix.split("\n")[:suffix_lines]) if suffix else ""
    return head + ("\n" + tail if tail else "")


def _train_rows(source: str | Path | Iterable[Mapping[str, Any]], revision: str | None) -> Iterable[Mapping]:
    if not isinstance(source, (str, Path)):
        return source
    from training.data import load_corpus

    train = load_corpus(str(source), revision, splits=("train",))["train"]
    return train.select_columns(["repo", "path", "language", "content"]).to_list()


def build_index(
    source: str | Path | Iterable[Mapping[str, Any]],
    out: str | Path,
    revision: str | None = None,
    max_lines: int = MAX_LINES,
    label: str | None = None,
) -> Path:
    """Chunk and index the train split of a dataset folder / Hub id (or `source` rows) into the folder
    `out` (replaced whole, atomically), and return it. `label` names the source of rows in retrieval.json."""
    import bm25s

    started = time.perf_counter()
    chunks = [c for row in _train_rows(source, revision) for c in chunk_file(row, max_lines)]
    if not chunks:
        raise ValueError("the train split has no text to index: build the corpus first")
    bm25 = bm25s.BM25()
    bm25.index([code_tokens(f"{c.path}\n{c.text}") for c in chunks], show_progress=False)
    out = Path(out)
    with staged_dir(out) as tmp:
        bm25.save(tmp / BM25_DIR, show_progress=False)
        with open(tmp / CHUNKS_FILE, "w", encoding="utf-8") as f:
            for c in chunks:
                f.write(json.dumps(asdict(c), ensure_ascii=False) + "\n")
        meta = {
            "version": INDEX_VERSION,
            "source": label or (str(source) if isinstance(source, (str, Path)) else None),
            "revision": revision,
            "chunks": len(chunks),
            "files": len({(c.repo, c.path) for c in chunks}),
            "max_lines": max_lines,
            "build_seconds": round(time.perf_counter() - started, 3),
        }
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return out


class Retriever:
    """BM25 over the chunks of a folder `build_index` wrote."""

    def __init__(self, bm25: Any, chunks: list[Chunk], meta: dict[str, Any]) -> None:
        self.bm25, self.chunks, self.meta = bm25, chunks, meta
        self._by_file: dict[tuple[str, str], list[int]] = {}
        for i, c in enumerate(chunks):
            self._by_file.setdefault((c.repo, c.path), []).append(i)

    @classmethod
    def load(cls, folder: str | Path) -> Retriever:
        import bm25s

        folder = Path(folder)
        meta_path = folder / META_FILE
        if not meta_path.is_file():
            raise FileNotFoundError(
                f"{folder} is not a retrieval index (no {META_FILE}): build one with "
                "training.evaluation.retrieval.build_index or `evaluate --retrieval`"
            )
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("version") != INDEX_VERSION:
            raise ValueError(
                f"{folder}: index version {meta.get('version')}, this code reads {INDEX_VERSION}"
            )
        with open(folder / CHUNKS_FILE, encoding="utf-8") as f:
            chunks = [Chunk(**json.loads(line)) for line in f]
        bm25 = bm25s.BM25.load(folder / BM25_DIR, allow_pickle=False, verbosity=0, show_progress=False)
        return cls(bm25, chunks, meta)

    def top_k(self, query: str, k: int, exclude: tuple[str, str] | None = None) -> list[tuple[Chunk, float]]:
        """The `k` best chunks for `query` with their BM25 scores, best first (ties by chunk order), never
        from the file `exclude` = (repo, path) and never with a score of 0 (no shared token)."""
        tokens = code_tokens(query)
        ids = self.bm25.get_tokens_ids(tokens)
        if not ids or k <= 0:
            return []
        scores = np.asarray(self.bm25.get_scores_from_ids(ids), dtype=np.float64)
        if exclude is not None:
            scores[self._by_file.get(tuple(exclude), [])] = 0.0
        if len(scores) > k:  # every chunk tied with the k-th best stays a candidate: ties go by chunk order
            kth = np.partition(scores, len(scores) - k)[len(scores) - k]
            candidates = np.flatnonzero(scores >= kth)
        else:
            candidates = np.arange(len(scores))
        order = candidates[np.lexsort((candidates, -scores[candidates]))][:k]
        return [(self.chunks[i], float(scores[i])) for i in order if scores[i] > 0]
