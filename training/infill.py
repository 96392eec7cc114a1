"""A Flyte infilling benchmark: tasks cut from held-out code, greedy PSM generation, and its metrics.

Tasks are whole lines inside function bodies of Python and Go files (found with tree-sitter), never blank,
comment-only or inside a multi-line string: `single_line` takes one line, `multi_line` a block of 2–5
consecutive lines of one body. Only files that parse cleanly are used, so "the filled file still parses"
measures the model and not the file (a blank fill never counts as parsing). Selection is seeded (one numpy
Generator, fixed bucket order), so the same split and seed give the same tasks byte for byte. The prefix
keeps its last `prefix_tokens` tokens and the suffix its first `suffix_tokens` (the code nearest the hole),
both cut at line boundaries.
"""

from __future__ import annotations

import ast
import json
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, replace
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from flyte_llama_common.atomic import write_text_atomic
from flyte_llama_common.schemas import TASK_NAMES, Task, read_task_rows
from training.evaluation import metrics, scoring
from training.fim import decode_piece, encode_piece, fim_tokens, infill_prompt_ids

TASKS_FILE = "infilling_tasks.jsonl"
LANGUAGES = ("python", "go")
KINDS = ("single_line", "multi_line")
MAX_BLOCK = 5
FUNCTION_TYPES = {"python": {"function_definition"}, "go": {"function_declaration", "method_declaration"}}
# Rows inside these (when they span lines) are text, not code: docstrings, raw strings.
STRING_TYPES = {"python": {"string"}, "go": {"raw_string_literal", "interpreted_string_literal"}}


# The task record is flyte_llama_common.schemas.Task, shared with the `infilling` dataset config.


@cache
def _parser(language: str):
    from tree_sitter_language_pack import get_parser

    return get_parser(language)


def parse_clean(language: str, content: str):
    """The tree-sitter tree of `content`, or None when it has syntax errors (ERROR or MISSING nodes).

    Python is also compiled with `ast`: tree-sitter's Python grammar accepts wrong indentation (a dedented
    line inside a function body parses), which would count a badly indented infill as "still parses".
    """
    tree = _parser(language).parse(content.encode("utf-8"))
    if tree.root_node.has_error:
        return None
    if language == "python":
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # SyntaxWarnings (e.g. invalid escapes) are not errors
                ast.parse(content)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return None
    return tree


def body_rows(language: str, content: str) -> tuple[list[tuple[int, int]], set[int]] | None:
    """(inclusive row ranges of function bodies, rows that are code) or None when the file does not parse."""
    tree = parse_clean(language, content)
    if tree is None:
        return None
    source = content.encode("utf-8")
    lines = content.split("\n")
    raw_lines = source.split(b"\n")  # tree-sitter columns count bytes, not characters
    bodies: list[tuple[int, int]] = []
    text_rows: set[int] = set()
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        if node.type == "comment" or (
            node.type in STRING_TYPES[language] and node.start_point.row < node.end_point.row
        ):
            # A comment that starts a line makes the line comment-only; a multi-line string's rows are text.
            start = node.start_point.row
            if node.type != "comment" or not raw_lines[start][: node.start_point.column].strip():
                text_rows.update(range(start, node.end_point.row + 1))
        if node.type not in FUNCTION_TYPES[language]:
            continue
        body = node.child_by_field_name("body")
        if body is None:
            continue
        if language == "go":  # `{` and `}` rows hold the braces; the body is strictly between them
            first, last = body.start_point.row + 1, body.end_point.row - 1
        else:
            first, last = body.start_point.row, body.end_point.row
            if raw_lines[first][: body.start_point.column].strip():  # `def f(): return 1`: header row
                first += 1
        if first <= last:
            bodies.append((first, last))
    code = {r for first, last in bodies for r in range(first, last + 1) if lines[r].strip()} - text_rows
    return sorted(set(bodies)), code


def candidate_holes(language: str, content: str) -> dict[str, list[tuple[int, int]]]:
    """{kind: sorted (first_row, last_row) holes} of one file; empty lists when it does not parse."""
    found = body_rows(language, content)
    if found is None:
        return {kind: [] for kind in KINDS}
    bodies, code = found
    multi: set[tuple[int, int]] = set()
    for first, last in bodies:
        for row in range(first, last + 1):
            for size in range(2, MAX_BLOCK + 1):
                end = row + size - 1
                if end > last or not all(r in code for r in range(row, end + 1)):
                    break
                multi.add((row, end))
    return {"single_line": [(r, r) for r in sorted(code)], "multi_line": sorted(multi)}


def trim_prefix(tokenizer, text: str, budget: int | None) -> str:
    """The end of `text` in at most `budget` tokens, starting at a line start."""
    if budget is None:
        return text
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    if len(enc["input_ids"]) <= budget:
        return text
    char = enc["offset_mapping"][len(enc["input_ids"]) - budget][0]
    cut = char if char == 0 or text[char - 1] == "\n" else text.find("\n", char) + 1 or len(text)
    while cut < len(text) and len(encode_piece(tokenizer, text[cut:], leading_space=True)) > budget:
        cut = text.find("\n", cut) + 1 or len(text)  # offsets are approximate at the cut: drop a line more
    return text[cut:]


def trim_suffix(tokenizer, text: str, budget: int | None) -> str:
    """The start of `text` in at most `budget` tokens, ending at a line end."""
    if budget is None:
        return text
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    if len(enc["input_ids"]) <= budget:
        return text
    cut = text.rfind("\n", 0, enc["offset_mapping"][budget - 1][1]) + 1 if budget > 0 else 0
    while cut > 0 and len(encode_piece(tokenizer, text[:cut], leading_space=False)) > budget:
        cut = text.rfind("\n", 0, cut - 1) + 1
    return text[:cut]


def make_task(task_id, record, kind, rows, tokenizer, prefix_tokens, suffix_tokens) -> Task:
    """The task for the hole `rows` (0-based, inclusive) of `record`'s file."""
    content = record["content"]
    starts = [0] + [i + 1 for i, c in enumerate(content) if c == "\n"]
    lo = starts[rows[0]]
    hi = starts[rows[1] + 1] if rows[1] + 1 < len(starts) else len(content)
    prefix = trim_prefix(tokenizer, content[:lo], prefix_tokens)
    suffix = trim_suffix(tokenizer, content[hi:], suffix_tokens)
    return Task(
        task_id=task_id,
        repo=record["repo"],
        path=record["path"],
        language=record["language"],
        kind=kind,
        prefix=prefix,
        suffix=suffix,
        middle=content[lo:hi],
        lines=(rows[0] + 1, rows[1] + 1),
        span=(lo, hi),
        window=(lo - len(prefix), hi + len(suffix)),
    )


def extract_tasks(
    records: Sequence[Mapping[str, Any]],
    tokenizer,
    num_tasks: int,
    seed: int = 0,
    prefix_tokens: int | None = 1024,
    suffix_tokens: int | None = 512,
    verdict: Callable[[Task, str], str] | None = None,
    holes_of: Callable[[str, str], Mapping[str, list[tuple[int, int]]]] | None = None,
    kinds: Sequence[str] = KINDS,
    languages: Sequence[str] = LANGUAGES,
) -> list[Task]:
    """`num_tasks` tasks spread evenly over the (language, kind) buckets that have holes, files visited in
    a seeded random order (one task per file per round, so tasks come from as many files as possible).

    With `verdict` (task, file content → "clean" or a reason), a task that is not clean does not count
    toward its bucket's quota: it is returned too, after the clean ones, with its reason in `contamination`
    and an id ending in `-dropped-N`, so the drops can be counted and published beside the kept tasks.

    `holes_of(language, content) -> {kind: [(first_row, last_row)]}` (default `candidate_holes`) and `kinds`
    choose another benchmark's holes (the API-usage tasks of training/evaluation/api_usage.py)."""
    what = "Python or Go function bodies that parse" if holes_of is None else f"holes of kinds {list(kinds)}"
    holes_of = holes_of or candidate_holes
    holes: dict[tuple[str, str], list[tuple[int, list]]] = {
        (lang, k): [] for lang in languages for k in kinds
    }
    for i, record in enumerate(tqdm(records, desc="tasks", unit="file")):
        if record["language"] in languages:
            for kind, found in holes_of(record["language"], record["content"]).items():
                if found and (record["language"], kind) in holes:
                    holes[(record["language"], kind)].append((i, found))
    buckets = [b for b in holes if holes[b]]
    if not buckets:
        raise ValueError(f"no {what} in this split: no tasks")
    rng = np.random.default_rng(seed)
    tasks: list[Task] = []
    dropped: list[Task] = []
    for n, bucket in enumerate(buckets):
        quota = num_tasks // len(buckets) + (n < num_tasks % len(buckets))
        files = [(i, list(found)) for i, found in holes[bucket]]
        kept: list[Task] = []
        while len(kept) < quota and any(found for _, found in files):
            for j in rng.permutation(len(files)):
                i, found = files[j]
                if not found or len(kept) >= quota:
                    continue
                rows = found.pop(int(rng.integers(len(found))))
                task = make_task("", records[i], bucket[1], rows, tokenizer, prefix_tokens, suffix_tokens)
                reason = verdict(task, records[i]["content"]) if verdict is not None else "unchecked"
                if reason in ("clean", "unchecked"):
                    kept.append(
                        replace(
                            task, task_id=f"{bucket[0]}-{bucket[1]}-{len(kept):04d}", contamination=reason
                        )
                    )
                else:
                    task_id = f"{bucket[0]}-{bucket[1]}-dropped-{len(dropped):04d}"
                    dropped.append(replace(task, task_id=task_id, contamination=reason))
        tasks += kept
    return tasks + dropped


def write_tasks(path: str | Path, tasks: Sequence[Task]) -> None:
    """JSONL, one task a line (also publishable as an extra config of the dataset), written atomically."""
    write_text_atomic(path, "".join(json.dumps(asdict(t), ensure_ascii=False) + "\n" for t in tasks))


def read_tasks(path: str | Path) -> list[Task]:
    """The tasks of an infilling_tasks.jsonl (each line checked for every Task field)."""
    return [Task.from_row(r) for r in read_task_rows(path)]


def load_tasks(source: str, revision: str | None = None) -> list[Task]:
    """Published tasks: an infilling_tasks.jsonl, or the `infilling` config of a dataset folder or Hub id
    (added by `python -m dataset_builder add-infilling`), so different models are scored on the same holes."""
    from dataset_builder.infilling_config import CONFIG_NAME

    path = Path(source).expanduser()
    if path.is_file():
        return read_tasks(path)
    if path.is_dir():
        shards = sorted((path / CONFIG_NAME).glob("test-*.parquet"))
        if not shards:
            raise FileNotFoundError(
                f"{path} has no `{CONFIG_NAME}` config ({CONFIG_NAME}/test-*.parquet): add one with "
                "`python -m dataset_builder add-infilling`, or leave out --infill-from to cut new tasks"
            )
        import pyarrow.parquet as pq

        # Columns a config written before some optional ones existed lacks take their defaults (from_row).
        rows = [
            r
            for shard in shards
            for r in pq.read_table(
                shard, columns=[c for c in TASK_NAMES if c in pq.read_schema(shard).names]
            ).to_pylist()
        ]
        return [Task.from_row(r) for r in rows]
    from datasets import load_dataset

    try:
        ds = load_dataset(source, CONFIG_NAME, split="test", revision=revision)
    except Exception as exc:  # offline, no such repo or config: say what to do
        raise RuntimeError(
            f"could not load the `{CONFIG_NAME}` config of {source!r} at revision {revision!r} ({exc}); "
            "pass a tasks .jsonl or a local dataset folder, or leave out --infill-from"
        ) from exc
    columns = [c for c in TASK_NAMES if c in ds.column_names]
    return [Task.from_row(r) for r in ds.select_columns(columns).to_list()]


def decode_middle(tokenizer, ids: Sequence[int]) -> str:
    """Text of generated middle ids, decoded like they were encoded: with no leading "▁" (see fim.py)."""
    return decode_piece(tokenizer, ids)


def left_padded(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(input ids, attention mask) of `seqs` padded on the left to the longest: the batch layout of
    generation and of the teacher-forced likelihood (the last positions line up across rows)."""
    width = max(len(seq) for seq in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, seq in enumerate(seqs):
        ids[row, width - len(seq) :] = torch.tensor(list(seq))
        mask[row, width - len(seq) :] = 1
    return ids, mask


def generate_ids(
    model,
    prompts: Sequence[Sequence[int]],
    stop_ids: Sequence[int],
    pad_id: int,
    max_new_tokens: int,
    batch_size: int = 1,
    desc: str = "generate",
) -> list[list[int]]:
    """Greedy continuations of `prompts` (token ids), cut before the first stop id; batched with left
    padding (attention mask set) and longest prompts first."""
    order = sorted(range(len(prompts)), key=lambda i: (-len(prompts[i]), i))
    device = next(model.parameters()).device
    outputs: list[list[int]] = [[] for _ in prompts]
    model.eval()
    with (
        torch.inference_mode(),
        tqdm(total=len(prompts), desc=desc, unit="seq", disable=len(prompts) < 2) as bar,
    ):
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            ids, mask = left_padded([prompts[i] for i in batch], pad_id)
            width = ids.shape[1]
            generated = model.generate(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                eos_token_id=list(stop_ids),
                pad_token_id=pad_id,
            )[:, width:].tolist()
            for row, i in enumerate(batch):
                new = generated[row]
                outputs[i] = new[: next((k for k, tok in enumerate(new) if tok in stop_ids), len(new))]
            bar.update(len(batch))
    return outputs


def generate_middles(
    model,
    tokenizer,
    tasks: Sequence[Task],
    max_new_tokens: int,
    batch_size: int = 1,
    desc: str = "infill",
    mode: str = "psm",
) -> list[str]:
    """Greedy infills of `tasks` with `mode`'s prompt (PSM or SPM), each stopping at <EOT> (or EOS)."""
    fim = fim_tokens(tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else fim.eos_id
    prompts = [infill_prompt_ids(tokenizer, t.prefix, t.suffix, mode) for t in tasks]
    new = generate_ids(model, prompts, [fim.eot_id, fim.eos_id], pad_id, max_new_tokens, batch_size, desc)
    return [decode_middle(tokenizer, ids) for ids in new]


def normalize(code: str) -> str:
    """Trailing whitespace stripped from every line, trailing empty lines dropped (indentation kept)."""
    return metrics.normalize(code)


def exact_match(prediction: str, reference: str, kind: str = "multi_line") -> bool:
    """The field's exact match (training/evaluation/metrics.py): stripped, single-line fills cut at "\n"."""
    return metrics.exact_match(prediction, reference, kind)


def edit_similarity(prediction: str, reference: str) -> float:
    """1 - Levenshtein distance / length of the longer string, on normalized text (1.0 = identical)."""
    return metrics.edit_similarity(prediction, reference)


def _parses(language: str, source: str) -> bool:
    return parse_clean(language, source) is not None


def filled_file_parses_fn():
    """The `parses(language, source)` check the metrics use (tree-sitter, plus `ast` for Python)."""
    return _parses


def filled_file_parses(task: Task, content: str, prediction: str) -> bool:
    """Whether the original file with the hole filled by `prediction` still parses (see `parse_clean`).

    A blank fill counts as a failure: every hole holds code (never blank or comment-only lines), and deleting
    a statement usually leaves a file that parses, so a model that writes nothing would otherwise score well.
    """
    if not prediction.strip():
        return False
    return _parses(task.language, metrics.fill_file(content, task.span, task.middle, prediction))


def score_tasks(
    tasks: Sequence[Task], predictions: Sequence[str], contents: Mapping[tuple[str, str], str]
) -> list[dict[str, Any]]:
    """Per-task scores: exact_match(_strict), edit_similarity, valid_fill (Python only, else None)."""
    return [
        scoring.score_row(task, contents[(task.repo, task.path)], prediction, _parses)
        for task, prediction in zip(tasks, predictions, strict=True)
    ]


def aggregate(
    tasks: Sequence[Task], scores: Sequence[Mapping[str, Any]], seed: int = 0, fresh: Sequence | None = None
) -> dict[str, Any]:
    """The §4 infilling block: overall, by_kind, by_language (and fresh) means with 95% intervals."""
    return scoring.aggregate(tasks, scores, seed, fresh)
