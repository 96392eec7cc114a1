"""Fine-tune, retrieve, or both: `evaluate --retrieval` scores base + retrieval and adapter + retrieval on the
same tasks as base and adapter, with paired intervals, the leak count and the leaked tasks apart.

The result is a `retrieval` block inside the `infilling` and `api_usage` blocks (docs/ARCHITECTURE.md §4):
the two retrieval systems in the shape of the plain ones, the paired differences between all four, the
leak count with every system's metrics on the leaked and the other tasks, the added prompt tokens and the
query latency, and up to three tasks where retrieval changed the answer.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from training import infill
from training.evaluation import crossfile, scoring, suite
from training.evaluation.retrieval import Retriever, build_index

INDEX_DIR = "retrieval_index"
SUFFIX = "+retrieval"
PAIRS = (
    ("base+retrieval", "base"),
    ("adapter+retrieval", "adapter"),
    ("adapter", "base+retrieval"),
    ("adapter+retrieval", "base+retrieval"),
    ("adapter+retrieval", "base"),
)
EXAMPLES = 3


def open_index(config, splits: Mapping[str, Any]) -> tuple[Retriever, str]:
    """(the retriever, where its index lies): `config.retrieval_index` when it holds one; else built from
    the evaluated dataset's train split, there or beside the results (`retrieval_index/`)."""
    folder = Path(config.retrieval_index or Path(config.out).with_name(INDEX_DIR)).expanduser()
    if not (folder / "retrieval.json").is_file():
        if folder.exists() and any(
            folder.iterdir()
        ):  # building replaces the folder whole: never a stranger's
            raise FileExistsError(
                f"--retrieval-index {folder} exists and is not a retrieval index: pass a new or empty folder"
            )
        if "train" not in splits:
            raise ValueError(
                f"--retrieval needs a train split to index; {config.dataset!r} has {sorted(splits)}"
            )
        rows = splits["train"].select_columns(["repo", "path", "language", "content"]).to_list()
        build_index(rows, folder, label=config.dataset)
    return Retriever.load(folder), str(folder)


def retrieval_tasks(
    tasks: Sequence, retriever: Retriever, tokenizer, config
) -> tuple[list, list[dict[str, Any]]]:
    """The tasks with cross-file context (same ids, same middles) and per task the chunks, added tokens,
    leak flag and query time: what any benchmark that prompts with prefix/suffix can score."""
    return crossfile.augment_tasks(tasks, retriever, tokenizer, config.retrieval_k, config.retrieval_tokens)


def _latency(info: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    seconds = sorted(i["query_seconds"] for i in info)
    tokens = [i["context_tokens"] for i in info]
    p95 = seconds[min(len(seconds) - 1, int(0.95 * len(seconds)))]
    return {
        "query_ms_median": round(statistics.median(seconds) * 1000, 3),
        "query_ms_p95": round(p95 * 1000, 3),
        "added_tokens_mean": statistics.fmean(tokens),
        "added_tokens_max": max(tokens),
        "tasks_without_context": sum(not i["chunks"] for i in info),
    }


def _subset(rows: Sequence[Mapping[str, Any]], idx: Sequence[int]) -> list[Mapping[str, Any]]:
    return [rows[i] for i in idx]


def _leak_block(tasks, systems, info, seed) -> dict[str, Any]:
    leaked = [i for i, row in enumerate(info) if row["leak"]]
    other = [i for i, row in enumerate(info) if not row["leak"]]
    block: dict[str, Any] = {
        "count": len(leaked),
        "checked": sum(row["leak"] is not None for row in info),
        "min_middle_chars": crossfile.LEAK_MIN_CHARS,
        "task_ids": [tasks[i].task_id for i in leaked],
    }
    for name, idx in (("leaked", leaked), ("not_leaked", other)):
        if idx:
            sub = _subset(tasks, idx)
            block[name] = {
                s: scoring.aggregate(sub, _subset(rows, idx), seed)["overall"] for s, rows in systems.items()
            }
            block[f"{name}_differences"] = {
                f"{a} - {b}": scoring.paired_difference(
                    sub, _subset(systems[a], idx), _subset(systems[b], idx), seed
                )
                for a, b in PAIRS
                if a in systems and b in systems
            }
    return block


def _examples(tasks, systems, info) -> list[dict[str, Any]]:
    """Tasks where retrieval changed the answer, for reading: first those where it turned a wrong answer
    right (or right wrong); when there are fewer than EXAMPLES of those (a small model may never match
    exactly), the ones whose edit similarity it moved most, either way. `changed` says which."""
    out: list[dict[str, Any]] = []

    def add(model: str, i: int, changed: str, plain: list, aug: list) -> None:
        out.append(
            {
                "task_id": tasks[i].task_id,
                "model": model,
                "changed": changed,
                "reference": tasks[i].middle,
                "without": plain[i]["prediction"],
                "with": aug[i]["prediction"],
                "edit_similarity": [plain[i]["edit_similarity"], aug[i]["edit_similarity"]],
                "chunks": info[i]["chunks"],
                "leak": info[i]["leak"],
            }
        )

    for model in ("adapter", "base"):
        plain, aug = systems.get(model), systems.get(model + SUFFIX)
        if plain is None or aug is None:
            continue
        for i in range(len(tasks)):
            if plain[i]["exact_match"] != aug[i]["exact_match"] and len(out) < EXAMPLES:
                add(model, i, "exact_match", plain, aug)
        moved = sorted(
            (i for i in range(len(tasks)) if plain[i]["prediction"] != aug[i]["prediction"]),
            key=lambda i: (-abs(aug[i]["edit_similarity"] - plain[i]["edit_similarity"]), i),
        )
        seen = {e["task_id"] for e in out}
        for i in moved:
            if len(out) >= EXAMPLES:
                break
            if tasks[i].task_id not in seen:
                add(model, i, "edit_similarity", plain, aug)
        if out:
            break
    return out


def score(
    passes: Callable[[], list],
    model,
    tokenizer,
    tasks: Sequence,
    contents: Mapping[tuple[str, str], str],
    config,
    retriever: Retriever,
    plain: Mapping[str, Sequence[Mapping[str, Any]]],
    fresh: Sequence | None = None,
    api: bool = False,
    *,
    benchmark: str | None = None,
    max_new_tokens: int | None = None,
    add_scores: Callable[[list[dict[str, Any]], list[str], str], None] | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the `retrieval` block, per-task outputs) for `tasks`, given the plain systems' rows `plain`
    ({"base": rows[, "adapter": rows]}, scored on the same tasks in the same order).

    Another benchmark (the execution tasks) names itself in `benchmark`, sets its generation length and adds
    its own per-task scores with `add_scores(rows, predictions, system name)`."""
    benchmark = benchmark or ("api_usage" if api else None)
    augmented, info = retrieval_tasks(tasks, retriever, tokenizer, config)
    counted = suite.reference_api_valid(tasks, contents) if api else None
    systems: dict[str, Sequence[Mapping[str, Any]]] = {m: plain[m] for m in ("base", "adapter") if m in plain}
    block: dict[str, Any] = {}
    outputs: list[dict[str, Any]] = []
    for name, ctx in passes():
        with ctx:
            predictions = infill.generate_middles(
                model,
                tokenizer,
                augmented,
                max_new_tokens or config.max_new_tokens,
                config.batch_size,
                f"{benchmark or 'infill'} {name}{SUFFIX}",
                config.infill_mode,
            )
        rows = infill.score_tasks(tasks, predictions, contents)
        if api:
            suite.add_api_validity(tasks, rows, contents, counted)
        if add_scores is not None:
            add_scores(rows, predictions, name + SUFFIX)
        systems[name + SUFFIX] = rows
        block[name] = infill.aggregate(tasks, rows, config.bootstrap_seed, fresh)
        outputs += [
            {"model": name + SUFFIX, **({"benchmark": benchmark} if benchmark else {}), **row, **meta}
            for row, meta in zip(
                rows, ({"chunks": i["chunks"], "leak": i["leak"]} for i in info), strict=True
            )
        ]
    block["differences"] = {
        f"{a} - {b}": scoring.paired_difference(tasks, systems[a], systems[b], config.bootstrap_seed, fresh)
        for a, b in PAIRS
        if a in systems and b in systems
    }
    block["leaks"] = _leak_block(tasks, systems, info, config.bootstrap_seed)
    block["context"] = _latency(info)
    block["examples"] = _examples(tasks, systems, info)
    return block, outputs


def plain_rows(outputs: Sequence[Mapping[str, Any]], benchmark: str | None = None) -> dict[str, list[dict]]:
    """{model: score rows} of the plain systems from evaluate's per-task outputs (API rows carry
    `benchmark`), in task order."""
    out: dict[str, list[dict]] = {}
    for row in outputs:
        if row.get("benchmark") == benchmark and row["model"] in ("base", "adapter"):
            out.setdefault(row["model"], []).append(
                {k: v for k, v in row.items() if k not in ("model", "benchmark")}
            )
    return out


def settings(config, folder: str, retriever: Retriever) -> dict[str, Any]:
    """The `settings.retrieval` record of eval_results.json."""
    from training.eval_results import portable_location
    from training.evaluation import retrieval

    return {
        "index": portable_location(folder, config.out),
        "chunks": retriever.meta["chunks"],
        "k": config.retrieval_k,
        "token_budget": config.retrieval_tokens,
        "query": {"prefix_lines": retrieval.QUERY_PREFIX_LINES, "suffix_lines": retrieval.QUERY_SUFFIX_LINES},
        "ranker": "bm25s (lucene BM25, k1=1.5, b=0.75) over identifier tokens",
    }
