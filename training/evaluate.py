"""Held-out perplexity with a sliding window, and `python -m training evaluate` (perplexity + infilling).

Each document is scored whole and unpacked: `BOS + tokens + EOS`, every token after BOS predicted exactly
once (EOS included: the model must learn to stop). Documents longer than the context are scored with the
standard sliding window: windows start every `stride` tokens, and each window scores only the tokens the
previous window did not, so a token sees at least `context - stride` tokens of left context (the first
window scores all of its tokens). Sums of negative log-likelihood (nats) are kept per document and summed
per group, so every figure is token-weighted and the groups add up to the overall.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from training.eval_config import EvalConfig, eval_config_from_args, evaluate_parser, given_fields
from training.eval_results import perplexity_metrics, portable_location

OUTPUTS_FILE = "infilling_outputs.jsonl"


@dataclass(frozen=True)
class Window:
    """Tokens [begin, end) of one document go into the model; the predictions made at positions
    [score_from, end) (of tokens score_from+1 .. end) are scored."""

    doc: int
    begin: int
    end: int
    score_from: int


def sliding_windows(num_tokens: int, context: int, stride: int, doc: int = 0) -> list[Window]:
    """Windows that predict each of tokens 1..num_tokens-1 of a document exactly once.

    Position p predicts token p+1, so a document of N tokens has N-1 predictions, made at positions
    0..N-2; windows tile those positions (the last token is only ever a target, never an input). With
    stride == context the windows are non-overlapping chunks; with a smaller stride a window re-reads
    `context - stride` positions as left context and scores only the positions after the previous window.
    """
    if context < 1:
        raise ValueError(f"context={context}: a window needs at least 1 token")
    if not 1 <= stride <= context:
        raise ValueError(f"stride={stride} must be between 1 and the context ({context})")
    positions = num_tokens - 1
    windows: list[Window] = []
    prev_end = 0
    for begin in range(0, max(positions, 0), stride):
        end = min(begin + context, positions)
        windows.append(Window(doc, begin, end, prev_end))
        prev_end = end
        if end == positions:
            break
    return windows


def encode_documents(tokenizer, texts: Sequence[str]) -> list[list[int]]:
    """`BOS + tokens + EOS` for each text (one batched tokenizer call)."""
    if tokenizer.bos_token_id is None or tokenizer.eos_token_id is None:
        raise ValueError(f"{type(tokenizer).__name__} needs a BOS and an EOS token to score whole documents")
    # verbose=False: documents longer than model_max_length are expected, the sliding window handles them.
    encoded = tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]
    return [[tokenizer.bos_token_id, *ids, tokenizer.eos_token_id] for ids in encoded]


def _batches(windows: list[Window], batch_size: int) -> Iterator[list[Window]]:
    # Longest first: similar lengths share a batch (little padding), and an out-of-memory shows up at once.
    ordered = sorted(windows, key=lambda w: (-(w.end - w.begin), w.doc, w.begin))
    for i in range(0, len(ordered), batch_size):
        yield ordered[i : i + batch_size]


def score_documents(
    model: torch.nn.Module,
    docs: Sequence[Sequence[int]],
    context: int,
    stride: int,
    batch_size: int,
    pad_id: int = 0,
    desc: str = "perplexity",
) -> tuple[list[float], list[int]]:
    """Per-document (summed NLL in nats, number of scored tokens) under `model`, windows batched."""
    windows = [w for i, ids in enumerate(docs) for w in sliding_windows(len(ids), context, stride, i)]
    nll = [0.0] * len(docs)
    counts = [0] * len(docs)
    device = next(model.parameters()).device
    model.eval()
    total = sum(w.end - w.score_from for w in windows)
    with torch.inference_mode(), tqdm(total=total, desc=desc, unit="tok", unit_scale=True) as bar:
        for batch in _batches(windows, batch_size):
            width = max(w.end - w.begin for w in batch)
            input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, w in enumerate(batch):
                input_ids[row, : w.end - w.begin] = torch.tensor(docs[w.doc][w.begin : w.end])
                mask[row, : w.end - w.begin] = 1
            # use_cache=False: nothing is generated, and a cache would only cost memory.
            logits = model(
                input_ids=input_ids.to(device), attention_mask=mask.to(device), use_cache=False
            ).logits
            for row, w in enumerate(batch):
                lo, hi = w.score_from - w.begin, w.end - w.begin
                targets = torch.tensor(docs[w.doc][w.score_from + 1 : w.end + 1], device=device)
                row_logits = logits[row, lo:hi].float()  # log-softmax in float32 even for bf16 models
                loss = torch.nn.functional.cross_entropy(row_logits, targets, reduction="sum")
                nll[w.doc] += loss.item()
                counts[w.doc] += hi - lo
            bar.update(sum(w.end - w.score_from for w in batch))
    return nll, counts


def group_metrics(
    nll: Sequence[float], counts: Sequence[int], records: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """The §4 perplexity block: overall, by_repo and by_language, all token-weighted."""

    def metrics(indices: list[int]) -> dict[str, Any]:
        return perplexity_metrics(
            nll_sum=math.fsum(nll[i] for i in indices),
            tokens=sum(counts[i] for i in indices),
            num_bytes=sum(len(records[i]["content"].encode("utf-8")) for i in indices),
            documents=len(indices),
        )

    block: dict[str, Any] = {"overall": metrics(list(range(len(records))))}
    for group, key in (("by_repo", "repo"), ("by_language", "language")):
        members: dict[str, list[int]] = {}
        for i, record in enumerate(records):
            members.setdefault(record[key], []).append(i)
        block[group] = {name: metrics(members[name]) for name in sorted(members)}
    return block


def model_passes(model: torch.nn.Module) -> list[tuple[str, contextlib.AbstractContextManager]]:
    """[("base", ctx), ("adapter", ctx)] for a PeftModel (base = adapter disabled), else [("base", null)]."""
    if hasattr(model, "disable_adapter") and hasattr(model, "peft_config"):
        return [("base", model.disable_adapter()), ("adapter", contextlib.nullcontext())]
    return [("base", contextlib.nullcontext())]


def load_split(dataset: str, split: str, revision: str | None = None, max_docs: int | None = None):
    """The `split` of a dataset folder or Hub id, first `max_docs` rows.

    Through `training.data.load_corpus`, as training does: a local folder is read from its Parquet shards
    (datasets' own cache of a local folder can serve stale rows after a rebuild; docs/NOTES.md)."""
    from training.data import load_corpus

    if not dataset or (not Path(dataset).expanduser().exists() and dataset.count("/") != 1):
        raise FileNotFoundError(
            f"dataset {dataset!r} not found: pass a dataset folder "
            "(python -m dataset_builder build --out DIR) or a Hub id ORG/NAME"
        )
    try:
        dsd = load_corpus(dataset, revision, splits=())
    except ValueError as e:
        if "corresponds to no data" in str(e):  # datasets' words for a split with zero rows
            raise ValueError(f"split {split!r} of {dataset!r} is empty: nothing to evaluate") from e
        raise
    if split not in dsd:
        raise ValueError(f"dataset {dataset!r} has no split {split!r}; it has {sorted(dsd)}: pass --split")
    ds = dsd[split]
    missing = {"content", "repo", "path", "language"} - set(ds.column_names)
    if missing:
        raise ValueError(f"split {split!r} lacks the columns {sorted(missing)} (see docs/ARCHITECTURE.md §1)")
    if max_docs is not None:
        ds = ds.select(range(min(max_docs, len(ds))))
    if len(ds) == 0:
        raise ValueError(f"split {split!r} of {dataset!r} is empty: nothing to evaluate")
    return ds


def load_models(base: str | None, base_revision: str | None, adapter: str | None, dtype: str):
    """(model, tokenizer): the base, wrapped in the adapter when one is given (loaded once, on GPU if any)."""
    from training.modeling import adapter_base, load_adapter_model, load_base_model, load_tokenizer

    if adapter is not None:
        recorded_base, recorded_revision = adapter_base(adapter)  # raises when adapter_config.json is missing
        if base is None:
            base, base_revision = recorded_base, recorded_revision
    if base is None:
        raise ValueError("pass --base MODEL (or --adapter DIR, whose adapter_config.json names its base)")
    model = load_base_model(base, base_revision, dtype=dtype)
    if getattr(model, "hf_device_map", None) is None and torch.cuda.is_available():
        model = model.to("cuda")
    # The adapter folder carries the tokenizer it was trained with; prefer it.
    has_tok = adapter is not None and (Path(adapter) / "tokenizer_config.json").is_file()
    tokenizer = load_tokenizer(adapter) if has_tok else load_tokenizer(base, base_revision)
    if adapter is not None:
        model = load_adapter_model(model, adapter)
    model.eval()
    return model, tokenizer, base, base_revision


def run(args: argparse.Namespace) -> int:
    """Hook for training/__main__.py's COMMANDS registry: the parsed flags → EvalConfig → evaluate."""
    evaluate(eval_config_from_args(args, given_fields(args)))
    return 0


def evaluate_main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """`python -m training evaluate` as a function: parses `argv`, returns the results it wrote."""
    args = evaluate_parser().parse_args(argv)
    return evaluate(eval_config_from_args(args, given_fields(args)))


def evaluate(args: EvalConfig) -> dict[str, Any]:
    """Perplexity (+ infilling) for the base [and the adapter] as `args` says; writes `args.out` and the
    tasks next to it, and returns the results (the schema of docs/ARCHITECTURE.md §4)."""
    if not isinstance(args, EvalConfig):
        raise TypeError(
            f"evaluate takes an EvalConfig, not {type(args).__name__}: see training/eval_config.py"
        )
    from dataset_builder.infilling_config import check_tasks
    from training import infill
    from training.eval_results import build_results, print_summary, write_atomic, write_results

    if args.adapter is not None and not (Path(args.adapter) / "adapter_config.json").is_file():
        raise FileNotFoundError(
            f"{args.adapter}/adapter_config.json not found: --adapter must be a RUN/adapter folder "
            "written by `python -m training train`"
        )
    if args.context and args.stride:
        sliding_windows(2, args.context, args.stride)  # before the slow loads; defaults are checked below
    if Path(args.out).is_dir():
        raise IsADirectoryError(
            f"--out {args.out} is a folder: pass a file path such as {args.out}/eval_results.json"
        )
    ds = load_split(args.dataset, args.split, args.dataset_revision, args.max_docs)
    records = ds.select_columns(["content", "repo", "path", "language"]).to_list()
    contents = {(r["repo"], r["path"]): r["content"] for r in records}
    tasks = []
    if args.infill_from:  # checked before the (slow) model load: a stale tasks file fails in seconds
        tasks = infill.load_tasks(args.infill_from, args.dataset_revision)
        # Same files, same text, or a clear error: tasks only mean something against their own corpus.
        fix = "pass the --dataset/--dataset-revision the tasks were cut from (the version in their card)"
        check_tasks([asdict(t) for t in tasks], contents, fix)
    dtype = args.dtype or ("bfloat16" if torch.cuda.is_available() else "float32")
    model, tokenizer, base, base_revision = load_models(args.base, args.base_revision, args.adapter, dtype)
    context = args.context or model.config.max_position_embeddings
    stride = args.stride or max(context // 2, 1)
    sliding_windows(2, context, stride)  # checks context and stride before any work is done
    docs = encode_documents(tokenizer, [r["content"] for r in records])
    if not args.infill_from and args.infill_tasks > 0:
        tasks = infill.extract_tasks(
            records,
            tokenizer,
            num_tasks=args.infill_tasks,
            seed=args.infill_seed,
            prefix_tokens=args.prefix_tokens,
            suffix_tokens=args.suffix_tokens,
        )

    perplexity: dict[str, Any] = {}
    infilling: dict[str, Any] = {}
    outputs: list[dict[str, Any]] = []
    for name, ctx in model_passes(model):
        with ctx:
            nll, counts = score_documents(
                model, docs, context, stride, args.batch_size, tokenizer.pad_token_id or 0, f"ppl {name}"
            )
            perplexity[name] = group_metrics(nll, counts, records)
            if tasks:
                predictions = infill.generate_middles(
                    model,
                    tokenizer,
                    tasks,
                    args.max_new_tokens,
                    args.batch_size,
                    desc=f"infill {name}",
                    mode=args.infill_mode,
                )
                scores = infill.score_tasks(tasks, predictions, contents)
                infilling[name] = infill.aggregate(tasks, scores)
                outputs += [{"model": name, **row} for row in scores]
    # Local paths are recorded relative to the results' folder: the file gets published (ARCHITECTURE §4).
    base_rev = base_revision or getattr(model.config, "_commit_hash", None)
    models = {"base": {"id": portable_location(base, args.out), "revision": base_rev}}
    if args.adapter is not None:
        models["adapter"] = {"id": portable_location(str(args.adapter), args.out), "revision": None}
    settings = {
        "context_length": context,
        "stride": stride,
        "batch_size": args.batch_size,
        "dtype": dtype,
        "infill": (
            {"tasks_from": portable_location(args.infill_from, args.out), "num_tasks": len(tasks)}
            if args.infill_from
            else {
                "seed": args.infill_seed,
                "num_tasks": args.infill_tasks,
                "prefix_tokens": args.prefix_tokens,
                "suffix_tokens": args.suffix_tokens,
            }
        )
        | {"max_new_tokens": args.max_new_tokens, "mode": args.infill_mode},
    }
    results = build_results(
        dataset={
            "id": portable_location(args.dataset, args.out),
            "revision": args.dataset_revision,
            "split": args.split,
        },
        models=models,
        settings=settings,
        perplexity=perplexity,
        infilling={"tasks_file": infill.TASKS_FILE, **infilling} if tasks else None,
    )
    write_results(args.out, results)
    if tasks:
        infill.write_tasks(Path(args.out).with_name(infill.TASKS_FILE), tasks)
    if outputs:  # what each model wrote for each task: for reading, not part of the §4 contract
        lines = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in outputs)
        write_atomic(Path(args.out).with_name(OUTPUTS_FILE), lines)
    print_summary(results)
    print(
        f"wrote {os.fspath(args.out)}" + (f" and {infill.TASKS_FILE} ({len(tasks)} tasks)" if tasks else "")
    )
    return results
