"""`python -m training evaluate`: perplexity (training/evaluation/perplexity.py) and the infilling
benchmark (training/infill.py, training/evaluation/) for a base model and its adapter in one run, written
to eval_results.json (docs/ARCHITECTURE.md §4, docs/EVALUATION.md).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from training.eval_config import EvalConfig, eval_config_from_args, evaluate_parser, given_fields
from training.eval_results import portable_location
from training.evaluation.perplexity import (
    document_rows,
    encode_documents,
    group_metrics,
    score_documents,
    sliding_windows,
)

OUTPUTS_FILE = "infilling_outputs.jsonl"
DOCUMENTS_FILE = "heldout_documents.jsonl"  # per-document NLLs, for paired comparisons across runs


def model_passes(model: torch.nn.Module) -> list[tuple[str, contextlib.AbstractContextManager]]:
    """[("base", ctx), ("adapter", ctx)] for a PeftModel (base = adapter disabled), else [("base", null)]."""
    if hasattr(model, "disable_adapter") and hasattr(model, "peft_config"):
        return [("base", model.disable_adapter()), ("adapter", contextlib.nullcontext())]
    return [("base", contextlib.nullcontext())]


def load_split(dataset: str, split: str, revision: str | None = None, max_docs: int | None = None):
    """The `split` of a dataset folder or Hub id, first `max_docs` rows.

    Through `training.data.load_corpus`, as training does: a local folder is read from its Parquet shards
    (datasets' own cache of a local folder can serve stale rows after a rebuild; docs/NOTES.md)."""
    return pick_split(load_dataset_dict(dataset, revision, split), dataset, split, max_docs)


def load_dataset_dict(dataset: str, revision: str | None, split: str = "test"):
    """Every split of a dataset folder or Hub id, read once (evaluation also reads train and validation)."""
    from training.data import load_corpus

    if not dataset or (not Path(dataset).expanduser().exists() and dataset.count("/") != 1):
        raise FileNotFoundError(
            f"dataset {dataset!r} not found: pass a dataset folder "
            "(python -m dataset_builder build --out DIR) or a Hub id ORG/NAME"
        )
    try:
        return load_corpus(dataset, revision, splits=())
    except ValueError as e:
        if "corresponds to no data" in str(e):  # datasets' words for a split with zero rows
            raise ValueError(f"split {split!r} of {dataset!r} is empty: nothing to evaluate") from e
        raise


def pick_split(dsd, dataset: str, split: str, max_docs: int | None = None):
    """`split` of `dsd` (first `max_docs` rows), checked for the columns evaluation reads."""
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


def resolve_adapter_arg(adapter: str | None, revision: str | None) -> tuple[str | None, str | None]:
    """(local adapter folder or None, Hub commit or None) for `--adapter [--adapter-revision]`."""
    from training.adapter_source import resolve_adapter

    if adapter is None:
        if revision is not None:
            raise ValueError(f"--adapter-revision {revision!r} without --adapter: pass the adapter's Hub id")
        return None, None
    folder, commit = resolve_adapter(adapter, revision)
    return str(folder), commit


def load_models(
    base: str | None,
    base_revision: str | None,
    adapter: str | None,
    dtype: str,
    adapter_revision: str | None = None,
):
    """(model, tokenizer, base id, base revision): the base, wrapped in the adapter when one is given (loaded
    once, on GPU if any); the base id and revision are the adapter's recorded ones when `base` is None.
    `adapter` is a folder or a Hub id (at `adapter_revision`): training/adapter_source.py."""
    from training.modeling import adapter_base, load_adapter_model, load_base_model, load_tokenizer

    adapter, _ = resolve_adapter_arg(adapter, adapter_revision)
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
    from flyte_llama_common.atomic import write_text_atomic
    from training import infill
    from training.eval_results import build_results, print_summary, write_results
    from training.evaluation import (
        api_benchmark,
        decontam,
        exec_benchmark,
        execution,
        intervals,
        likelihood,
        likelihood_baselines,
        sandbox,
        scoring,
        suite,
    )

    # A folder or a Hub id (downloaded now, before the slow loads); the id as given is what is recorded.
    adapter_dir, adapter_rev = resolve_adapter_arg(args.adapter, args.adapter_revision)
    if args.context and args.stride:
        sliding_windows(2, args.context, args.stride)  # before the slow loads; defaults are checked below
    if Path(args.out).is_dir():
        raise IsADirectoryError(
            f"--out {args.out} is a folder: pass a file path such as {args.out}/eval_results.json"
        )
    splits = load_dataset_dict(args.dataset, args.dataset_revision, args.split)
    ds = pick_split(splits, args.dataset, args.split, args.max_docs)
    records = ds.select_columns(["content", "repo", "path", "language"]).to_list()
    contents = {(r["repo"], r["path"]): r["content"] for r in records}
    tasks = []
    wants_tasks = bool(args.infill_from) or args.infill_tasks > 0 or args.api_tasks > 0
    # train/validation rows: for decontamination, the baselines' counts and the byte n-gram's order
    wants_reference = args.baselines or (wants_tasks and args.decontaminate)
    reference = suite.reference_texts(splits) if wants_reference else {}
    index = None
    if args.decontaminate and wants_tasks:
        index = decontam.LineIndex.build(r["content"] for rows in reference.values() for r in rows)
        verdict = suite.verdict_fn(index, args.decontam_context, args.decontam_min_chars)
    if args.infill_from:  # checked before the (slow) model load: a stale tasks file fails in seconds
        tasks = infill.load_tasks(args.infill_from, args.dataset_revision)
        # Same files, same text, or a clear error: tasks only mean something against their own corpus.
        fix = "pass the --dataset/--dataset-revision the tasks were cut from (the version in their card)"
        check_tasks([asdict(t) for t in tasks], contents, fix)
        if index is not None:  # tasks cut before the verdicts existed are checked here
            tasks = [
                t
                if t.contamination != "unchecked"
                else replace(t, contamination=verdict(t, contents[(t.repo, t.path)]))
                for t in tasks
            ]
    dtype = args.dtype or ("bfloat16" if torch.cuda.is_available() else "float32")
    model, tokenizer, base, base_revision = load_models(args.base, args.base_revision, adapter_dir, dtype)
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
            verdict=verdict if index is not None else None,
        )
    api_tasks = (
        api_benchmark.cut_tasks(records, tokenizer, args, verdict if index is not None else None)
        if args.api_tasks > 0
        else []
    )
    exec_tasks, exec_summary = (
        exec_benchmark.cut_tasks(records, tokenizer, args, verdict if index is not None else None)
        if args.exec_tasks > 0
        else ([], None)
    )
    if exec_tasks and args.git_dirs:
        exec_tasks, _ = suite.with_freshness(
            exec_tasks, args.dataset, args.dataset_revision, args.git_dirs, args.fresh_cutoff
        )
    fresh_summary = None
    if tasks and args.git_dirs:
        tasks, fresh_summary = suite.with_freshness(
            tasks, args.dataset, args.dataset_revision, args.git_dirs, args.fresh_cutoff
        )
    if api_tasks and args.git_dirs:
        api_tasks, _ = suite.with_freshness(
            api_tasks, args.dataset, args.dataset_revision, args.git_dirs, args.fresh_cutoff
        )
    api_scored = [t for t in api_tasks if t.contamination in (decontam.CLEAN, "unchecked")]
    if fresh_summary is None and any(t.fresh is not None for t in tasks):  # published with their flags
        fresh_summary = suite.fresh_summary(tasks, args.fresh_cutoff)
    scored = [t for t in tasks if t.contamination in (decontam.CLEAN, "unchecked")]
    fresh = [t.fresh for t in scored] if fresh_summary else None
    systems: dict[str, list[dict[str, Any]]] = {}

    perplexity: dict[str, Any] = {}
    infilling: dict[str, Any] = {}
    outputs: list[dict[str, Any]] = []
    doc_nll: dict[str, list[float]] = {}
    for name, ctx in model_passes(model):
        with ctx:
            nll, counts = score_documents(
                model, docs, context, stride, args.batch_size, tokenizer.pad_token_id or 0, f"ppl {name}"
            )
            perplexity[name], doc_nll[name] = group_metrics(nll, counts, records), list(nll)
            if scored:
                predictions = infill.generate_middles(
                    model,
                    tokenizer,
                    scored,
                    args.max_new_tokens,
                    args.batch_size,
                    desc=f"infill {name}",
                    mode=args.infill_mode,
                )
                scores = infill.score_tasks(scored, predictions, contents)
                if args.likelihood:
                    for mode in likelihood.MODES:
                        nll = likelihood.middle_nll(
                            model, tokenizer, scored, mode, args.batch_size, desc=f"nll {mode} {name}"
                        )
                        scoring.add_likelihood(scores, mode, nll)
                systems[name] = scores
                infilling[name] = infill.aggregate(scored, scores, args.bootstrap_seed, fresh)
                outputs += [{"model": name, **row} for row in scores]
    ngram, baseline_info = (
        suite.train_ngram(reference.get("train"), args.ngram_max_tokens)
        if args.baselines and (scored or api_scored)
        else (None, {})
    )
    fitted, byte_info = (
        likelihood_baselines.fit(reference, args.byte_ngram_max_bytes) if args.baselines else (None, {})
    )
    baseline_info.update(byte_info)
    if scored and args.baselines:
        rows = suite.baseline_rows(scored, contents, ngram, infill.filled_file_parses_fn())
        if fitted is not None and args.likelihood:
            rows.update(likelihood_baselines.middle_rows(fitted, scored))
        infilling["baselines"] = {
            n: infill.aggregate(scored, r, args.bootstrap_seed, fresh) for n, r in rows.items()
        }
        systems.update(rows)
    if scored:
        infilling["differences"] = suite.comparisons(scored, systems, args.bootstrap_seed, fresh)
    if index is not None and tasks:
        test_texts = [r["content"] for r in records]
        infilling["decontamination"] = suite.decontamination_summary(
            tasks, index, test_texts, args.decontam_context, args.decontam_min_chars
        )
    if fresh_summary is not None:
        fresh_summary["note"] = suite.fresh_note(
            fresh_summary, infilling.get("adapter") or infilling.get("base")
        )
        infilling["fresh"] = fresh_summary
    api_block = None
    if api_scored:
        api_block, api_outputs = api_benchmark.score(
            lambda: model_passes(model), model, tokenizer, api_scored, contents, args, ngram
        )
        api_block["summary"] = api_benchmark.summary(api_tasks)
        outputs += api_outputs
    retrieval_settings = None
    exec_scored = [t for t in exec_tasks if execution.is_scored(t)]
    if args.retrieval and (scored or api_block or exec_scored):  # base/adapter + retrieval, same tasks
        from training.evaluation import retrieval_benchmark as rb

        retriever, index_dir = rb.open_index(args, splits)
        passes = lambda: model_passes(model)  # noqa: E731
        if scored:
            infilling["retrieval"], rows = rb.score(
                passes, model, tokenizer, scored, contents, args, retriever, systems, fresh
            )
            outputs += rows
        if api_block:
            plain = rb.plain_rows(outputs, "api_usage")
            api_fresh = (
                [t.fresh for t in api_scored] if any(t.fresh is not None for t in api_scored) else None
            )
            api_block["retrieval"], rows = rb.score(
                passes, model, tokenizer, api_scored, contents, args, retriever, plain, api_fresh, api=True
            )
            outputs += rows
        retrieval_settings = rb.settings(args, index_dir, retriever)
    exec_block = None
    if exec_tasks:
        exec_block = {"tasks_file": exec_benchmark.TASKS_FILE, "summary": exec_summary}
        if exec_scored:
            block, exec_outputs = exec_benchmark.score(
                lambda: model_passes(model), model, tokenizer, exec_scored, contents, args
            )
            exec_block.update(block)
            outputs += exec_outputs
            if args.retrieval:
                exec_block["retrieval"], rows = exec_benchmark.score_retrieval(
                    lambda: model_passes(model), model, tokenizer, exec_scored, contents, args, retriever,
                    rb.plain_rows(outputs, "execution"),
                )  # fmt: skip
                outputs += rows
    # Local paths are recorded relative to the results' folder: the file gets published (ARCHITECTURE §4).
    base_rev = base_revision or getattr(model.config, "_commit_hash", None)
    models = {"base": {"id": portable_location(base, args.out), "revision": base_rev}}
    if args.adapter is not None:
        models["adapter"] = {"id": portable_location(str(args.adapter), args.out), "revision": adapter_rev}
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
        | {"max_new_tokens": args.max_new_tokens, "mode": args.infill_mode, "scored_tasks": len(scored)},
        "bootstrap": {
            "seed": args.bootstrap_seed,
            "resamples": intervals.RESAMPLES,
            "level": intervals.LEVEL,
        },
        "decontamination": (
            {"context_lines": args.decontam_context, "min_middle_chars": args.decontam_min_chars}
            if args.decontaminate
            else None
        ),
        "fresh_cutoff": args.fresh_cutoff,
        "baselines": dict(baseline_info) if args.baselines else None,
        "api_tasks": args.api_tasks,
        "execution": (
            {
                "tasks": args.exec_tasks,
                "max_new_tokens": args.exec_max_new_tokens,
                "timeout_s": args.exec_timeout,
                "reference_budget_s": args.exec_reference_budget,
                "memory_mb": args.exec_memory_mb,
                "isolation": sandbox.isolation()[0],
            }
            if args.exec_tasks
            else None
        ),
    }
    if retrieval_settings is not None:
        settings["retrieval"] = retrieval_settings
    results = build_results(
        dataset={
            "id": portable_location(args.dataset, args.out),
            "revision": args.dataset_revision,
            "split": args.split,
        },
        models=models,
        settings=settings,
        perplexity=perplexity,
        held_out_bits_per_byte=likelihood_baselines.bits_per_byte_section(
            doc_nll, fitted, records, args.bootstrap_seed
        ),
        infilling={"tasks_file": infill.TASKS_FILE, **infilling} if tasks else None,
        api_usage=api_block,
        execution=exec_block,
    )
    write_results(args.out, results)
    if api_tasks:
        infill.write_tasks(Path(args.out).with_name(api_benchmark.TASKS_FILE), api_tasks)
    if exec_tasks:
        infill.write_tasks(Path(args.out).with_name(exec_benchmark.TASKS_FILE), exec_tasks)
    if tasks:
        infill.write_tasks(Path(args.out).with_name(infill.TASKS_FILE), tasks)
    if outputs:  # what each model wrote for each task: for reading, not part of the §4 contract
        lines = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in outputs)
        write_text_atomic(Path(args.out).with_name(OUTPUTS_FILE), lines)
    rows = document_rows(doc_nll, records)
    lines = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    write_text_atomic(Path(args.out).with_name(DOCUMENTS_FILE), lines)
    print_summary(results)
    print(
        f"wrote {os.fspath(args.out)}" + (f" and {infill.TASKS_FILE} ({len(tasks)} tasks)" if tasks else "")
    )
    return results
