"""Cross-file context in the prompt, built the way CrossCodeEval builds it: the retrieved chunks as
comment-prefixed blocks, each headed by its file path, placed before the prefix and trimmed to a token budget.

    # Path: flytekit/flytekit/core/task.py
    # def task(
    # ...

The context becomes part of the task's prefix, so the one PSM/SPM builder of training/fim.py lays out every
prompt (no second builder to drift): in PSM it follows <PRE>, in SPM it follows <MID>, right before the prefix
in both. Whole chunks are kept in rank order while they fit the budget (a chunk that does not fit is dropped,
never cut); the best chunk is placed last, nearest the hole, as RepoCoder does.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from flyte_llama_common.schemas import Task
from training.evaluation import metrics
from training.evaluation.retrieval import Chunk, Retriever, query_text
from training.fim import encode_piece, fim_tokens

# Line-comment markers by language; anything else takes "#".
COMMENT = {
    "go": "//",
    "typescript": "//",
    "tsx": "//",
    "javascript": "//",
    "protobuf": "//",
    "rust": "//",
    "sql": "--",
}
LEAK_MIN_CHARS = 20  # shorter middles (`return x`) occur everywhere: a match says nothing about leaking


@dataclass(frozen=True)
class Context:
    """The rendered context of one hole, the chunks it holds (rank order) and its size in tokens."""

    text: str
    chunks: tuple[Chunk, ...]
    tokens: int


def render_chunk(chunk: Chunk, language: str) -> str:
    """One chunk as comment lines of the target file's `language`, headed by `repo/path`."""
    mark = COMMENT.get(language, "#")
    body = [f"{mark} {line}".rstrip() for line in chunk.text.rstrip("\n").split("\n")]
    return "\n".join([f"{mark} Path: {chunk.repo}/{chunk.path}", *body]) + "\n"


def _special_ids(tokenizer) -> set[int]:
    fim = fim_tokens(tokenizer)
    ids = {fim.prefix_id, fim.suffix_id, fim.middle_id, fim.eot_id, fim.eos_id}
    return ids | {i for i in (tokenizer.bos_token_id, tokenizer.pad_token_id) if i is not None}


def build_context(tokenizer, chunks: Sequence[Chunk], language: str, budget: int) -> Context:
    """The context of `chunks` (best first) in at most `budget` tokens of `tokenizer`.

    A chunk whose text the tokenizer would turn into a special token (a literal `<PRE>` in the code) is
    dropped: the prompt must hold each FIM token exactly once."""
    special = _special_ids(tokenizer)
    kept: list[Chunk] = []
    blocks: list[str] = []
    tokens = 0
    for chunk in chunks:
        block = render_chunk(chunk, language)
        trial = "".join([block, *reversed(blocks)])
        ids = encode_piece(tokenizer, trial, leading_space=True)
        if len(ids) > budget or special & set(ids):
            continue
        kept.append(chunk)
        blocks.append(block)
        tokens = len(ids)
    return Context("".join(reversed(blocks)), tuple(kept), tokens)


def with_context(task: Task, context: Context) -> Task:
    """`task` with the context before its prefix: the prompt builders then place it for PSM and SPM alike."""
    return replace(task, prefix=context.text + task.prefix) if context.text else task


def _normal(text: str) -> str:
    return "\n".join(line.strip() for line in metrics.normalize(text).split("\n") if line.strip())


def leaks(task: Task, chunks: Sequence[Chunk]) -> bool | None:
    """Whether a chunk in the prompt holds the reference middle verbatim (lines stripped, blank lines
    dropped); None when the middle is too short to tell (under LEAK_MIN_CHARS after normalising)."""
    middle = _normal(task.middle)
    if len(middle) < LEAK_MIN_CHARS:
        return None
    return any(middle in _normal(c.text) for c in chunks)


def augment_tasks(
    tasks: Sequence[Task], retriever: Retriever, tokenizer, k: int, budget: int
) -> tuple[list[Task], list[dict[str, Any]]]:
    """(the retrieval-augmented tasks, per task: the chunks used, the added tokens, the leak flag and the
    query latency). The query is the code around the hole; the task's own file is never retrieved."""
    out: list[Task] = []
    info: list[dict[str, Any]] = []
    for task in tasks:
        started = time.perf_counter()
        hits = retriever.top_k(query_text(task.prefix, task.suffix), k, exclude=(task.repo, task.path))
        seconds = time.perf_counter() - started
        context = build_context(tokenizer, [c for c, _ in hits], task.language, budget)
        out.append(with_context(task, context))
        info.append(
            {
                "task_id": task.task_id,
                "chunks": [f"{c.repo}/{c.path}:{c.start_line}-{c.end_line}" for c in context.chunks],
                "context_tokens": context.tokens,
                "leak": leaks(task, context.chunks),
                "query_seconds": seconds,
            }
        )
    return out, info
