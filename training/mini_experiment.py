"""The mini experiment: offline, on CPU, one command shows that the method works at small scale.

    python -m training.mini_experiment --dataset /tmp/corpus-real --out /tmp/mini-exp [--seed 0]

1. pretrain  a small Llama from scratch, with FIM, on code that contains no Flyte: the standard library
             and installed non-Flyte packages (`training.pretrain`, `training.pretrain_corpus`, recipe
             `mini-pretrain`): the stand-in for Code Llama                               → OUT/run/base/
2. finetune  LoRA + FIM on the corpus' train split through the project's normal `train()` (recipe
             `mini-lora`, its base pointed at OUT/run/base)                               → OUT/run/adapter/
3. evaluate  base vs adapter on held-out test repos with the project's normal evaluation (perplexity per
             repo/language, the infilling benchmark)                         → OUT/run/eval/eval_results.json
4. card      the staged model folder with its model card (`model_card.stage`)  → OUT/hub/flyte-llama-mini/

Evaluation reads the whole test split by default (`--eval-bytes 0`); `--eval-bytes N` keeps a deterministic
subset instead (N bytes per repo, files in SHA-256 order of repo/path). Either way the files are written as a
dataset folder OUT/test-subset-<hash>/.

Every stage is sized in steps and tokens by its recipe (`mini-pretrain`'s max_steps, `mini-lora`'s
max_steps), never by the clock, so a rerun with the same seed gives the same models on any machine. The
recipes' step counts were chosen to fit about 20 minutes on 2 CPU cores; `--budget-minutes` only reports
whether the run did. Every stage is timed; OUT/mini_experiment.json records the numbers, what each stage did,
the commands and the versions.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shlex
import sys
import time
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from flyte_llama_common.atomic import staged_dir, write_text_atomic

PACKAGES = ("torch", "transformers", "tokenizers", "datasets", "trl", "peft", "accelerate")


def build_test_subset(dataset: str, parent: Path, bytes_per_repo: int) -> dict[str, Any]:
    """Write the test split's first `bytes_per_repo` bytes of each repo (files in SHA-256 order of
    repo/path, so the pick is fixed and spread over each repo) as a dataset folder with one `test` split,
    `parent/test-subset-<hash of the file list>`.

    The name carries the hash because `datasets.load_dataset(folder)` (which evaluation uses) caches a local
    folder under its name alone: two different subsets in folders of the same name would load the same rows.
    """
    from training.data import load_corpus, write_corpus_folder

    rows = load_corpus(dataset, None, ("test",))["test"].select_columns(
        ["content", "language", "repo", "path"]
    )
    rows = sorted(
        rows.to_list(), key=lambda r: hashlib.sha256(f"{r['repo']}/{r['path']}".encode()).hexdigest()
    )
    used: dict[str, int] = {}
    picked = []
    for row in rows:
        size = len(row["content"].encode("utf-8"))
        if bytes_per_repo and used.get(row["repo"], 0) + size > bytes_per_repo:
            continue
        used[row["repo"]] = used.get(row["repo"], 0) + size
        picked.append(row)
    picked.sort(key=lambda r: (r["repo"], r["path"]))
    digest = hashlib.sha256("".join(f"{r['repo']}/{r['path']}\n" for r in picked).encode()).hexdigest()
    out = parent / f"test-subset-{digest[:16]}"
    with staged_dir(out) as tmp:
        write_corpus_folder(tmp, {"test": picked})
        with (tmp / "README.md").open("a") as card:
            card.write(
                f"\nTest subset of {dataset}: {len(picked)} files, sha256 of the file list {digest}.\n"
            )
    return {
        "folder": out.name,
        "files": len(picked),
        "bytes_by_repo": used,
        "file_list_sha256": digest,
        "of_files": len(rows),
    }


@contextmanager
def timed(times: dict[str, float], stage: str):
    Console().rule(f"[bold]{stage}")
    start = time.monotonic()
    yield
    times[stage] = round(time.monotonic() - start, 1)


def run_experiment(args: argparse.Namespace) -> dict[str, Any]:
    from training.config import load_recipe, recipe_dict
    from training.eval_config import EvalConfig, command_flags
    from training.evaluate import evaluate
    from training.pretrain import load_pretrain_config, pretrain
    from training.train import train

    out = Path(args.out).resolve()
    run_dir, base_dir = out / "run", out / "run" / "base"
    if run_dir.exists() and not args.overwrite:
        raise FileExistsError(f"{run_dir} exists: pass --overwrite to replace it, or another --out")
    if run_dir.exists():
        import shutil

        shutil.rmtree(run_dir)
    start, times = time.monotonic(), {}

    pre_overrides: dict[str, Any] = {"seed": args.seed}
    pre_config = load_pretrain_config(args.pretrain_recipe, pre_overrides)
    with timed(times, "pretrain"):
        pretrain_log = pretrain(pre_config, base_dir)

    lora_overrides = {"dataset_name": args.dataset, "model_name_or_path": str(base_dir), "seed": args.seed}
    lora_overrides["data_seed"] = args.seed
    keys = list(recipe_dict(args.lora_recipe, lora_overrides))
    lora_config = load_recipe(args.lora_recipe, lora_overrides)
    with timed(times, "finetune"):
        lora_summary = train(lora_config, run_dir, recipe_keys=keys)

    with timed(times, "evaluate"):
        subset = build_test_subset(args.dataset, out, args.eval_bytes)
        subset_dir = out / subset["folder"]
        eval_config = EvalConfig(
            adapter=str(run_dir / "adapter"), dataset=str(subset_dir), split="test",
            context=pre_config.max_length, stride=pre_config.max_length // 2, batch_size=8, dtype="float32",
            infill_tasks=args.infill_tasks, max_new_tokens=48, prefix_tokens=256, suffix_tokens=128,
            out=str(run_dir / "eval" / "eval_results.json"),
        )  # fmt: skip
        Path(eval_config.out).parent.mkdir(parents=True, exist_ok=True)
        results = evaluate(eval_config)

    card_dir = None
    if not args.no_card:
        with timed(times, "card"):
            card_dir = stage_card(args, run_dir, out / "hub" / "flyte-llama-mini")
    times["total"] = round(time.monotonic() - start, 1)

    report = {
        "command": shlex.join([sys.executable, "-m", "training.mini_experiment", *sys.argv[1:]]),
        "stage_commands": {
            "pretrain": f"python -m training.pretrain --recipe {args.pretrain_recipe} --out {base_dir} "
            f"--set seed={args.seed} max_steps={pre_config.max_steps}",
            "finetune": f"python -m training train --recipe {args.lora_recipe} --dataset {args.dataset} "
            f"--output-dir {run_dir} --set model_name_or_path={base_dir} seed={args.seed} "
            f"data_seed={args.seed} max_steps={lora_config.max_steps}",
            "evaluate": shlex.join(["python", "-m", "training", "evaluate", *command_flags(eval_config)]),
        },
        "versions": {"python": platform.python_version(), **{p: _version(p) for p in PACKAGES}},
        "hardware": lora_summary.get("hardware"),
        "torch_threads": _threads(),
        "budget_minutes": args.budget_minutes,
        "within_budget": times["total"] <= args.budget_minutes * 60 if args.budget_minutes else None,
        "wall_s": times,
        "pretrain": {k: v for k, v in pretrain_log.items() if k not in ("files", "log_history", "config")},
        "finetune": {
            **lora_summary,
            "max_steps": lora_config.max_steps,
            "validation_loss": _final_eval_loss(run_dir / "adapter"),
        },
        "test_subset": subset,
        "perplexity": {m: _ppl_view(results["perplexity"][m]) for m in results["perplexity"]},
        "infilling": results.get("infilling") or {},
        "outputs": {
            "base": str(base_dir),
            "adapter": str(run_dir / "adapter"),
            "eval_results": str(run_dir / "eval" / "eval_results.json"),
            "card": str(card_dir) if card_dir else None,
        },
    }
    write_text_atomic(out / "mini_experiment.json", json.dumps(report, indent=2) + "\n")
    print_report(report)
    return report


def _final_eval_loss(adapter_dir: Path) -> float | None:
    """The fine-tune's final validation loss, from the adapter's training log (None if there is none)."""
    path = adapter_dir / "training_log.json"
    if not path.is_file():
        return None
    losses = [r["eval_loss"] for r in json.loads(path.read_text()).get("log_history", []) if "eval_loss" in r]
    return round(losses[-1], 4) if losses else None


def stage_card(args: argparse.Namespace, run_dir: Path, out: Path) -> Path:
    from model_card.stage import stage_model

    manifest = Path(args.dataset) / "manifest.json"
    return stage_model(
        run_dir / "adapter",
        run_dir / "eval" / "eval_results.json",
        out,
        repo_id="local/flyte-llama-mini",
        manifest_path=manifest if manifest.is_file() else None,
        allow_local_dataset=True,
    )


def _ppl_view(block: dict[str, Any]) -> dict[str, Any]:
    def view(m: dict[str, Any]) -> dict[str, Any]:
        keys = ("perplexity", "bits_per_byte", "tokens", "bytes", "documents")
        return {k: round(m[k], 4) if isinstance(m[k], float) else m[k] for k in keys}

    return {
        "overall": view(block["overall"]),
        "by_repo": {k: view(v) for k, v in block["by_repo"].items()},
        "by_language": {k: view(v) for k, v in block["by_language"].items()},
    }


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def print_report(report: dict[str, Any]) -> None:
    console = Console()
    stages = Table(title="mini experiment: wall time per stage (s)")
    for stage in report["wall_s"]:
        stages.add_column(stage, justify="right")
    stages.add_row(*(f"{v:.0f}" for v in report["wall_s"].values()))
    console.print(stages)

    ppl = report["perplexity"]
    table = Table(title="held-out test perplexity (bits/byte): base → adapter")
    for col in ("group", "docs", "tokens", "base ppl", "adapter ppl", "base bpb", "adapter bpb"):
        table.add_column(col, justify="right" if col != "group" else "left")
    groups = [("overall", ppl["base"]["overall"], ppl.get("adapter", {}).get("overall"))]
    for kind in ("by_repo", "by_language"):
        for name, m in ppl["base"][kind].items():
            groups.append((f"{kind[3:]}: {name}", m, ppl.get("adapter", {}).get(kind, {}).get(name)))
    for name, base, adapter in groups:
        a = adapter or {}
        table.add_row(
            name, str(base["documents"]), f"{base['tokens']:,}", f"{base['perplexity']:.2f}",
            f"{a.get('perplexity', float('nan')):.2f}", f"{base['bits_per_byte']:.3f}",
            f"{a.get('bits_per_byte', float('nan')):.3f}",
        )  # fmt: skip
    console.print(table)

    infill = report["infilling"]
    if infill.get("base"):
        from training.evaluation.report import infilling_table

        console.print(infilling_table(infill))
    p = report["pretrain"]
    console.print(
        f"pretrain: {p['parameters'] / 1e6:.2f}M params, {p['tokens_seen']:,} tokens ({p['steps']} steps, "
        f"stopped by {p['stopped_by']}), held-out stdlib loss {p['heldout_loss']:.3f}; "
        f"finetune: {report['finetune']['train_tokens']:,} tokens in "
        f"{report['finetune']['global_step']} steps; "
        f"total {report['wall_s']['total'] / 60:.1f} min (budget {report['budget_minutes']} min) on "
        f"{report['hardware']}, {report['torch_threads']} torch threads"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.mini_experiment", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--dataset", required=True, help="dataset folder (docs/ARCHITECTURE.md §2)")
    parser.add_argument("--out", required=True, help="experiment folder (e.g. /tmp/mini-exp)")
    parser.add_argument(
        "--budget-minutes", type=float, default=20.0,
        help="wall time the run is expected to fit, reported only: stages stop on steps, never on time",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="seed of both training stages")
    parser.add_argument(
        "--eval-bytes", type=int, default=0, help="test bytes per repo (0 = the whole test split)"
    )
    parser.add_argument("--infill-tasks", type=int, default=32, help="infilling tasks (0 = none)")
    parser.add_argument("--pretrain-recipe", default="mini-pretrain")
    parser.add_argument("--lora-recipe", default="mini-lora")
    parser.add_argument("--no-card", action="store_true", help="skip staging the model card folder")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT/run if it exists")
    args = parser.parse_args(argv)
    if not Path(args.dataset).is_dir():
        parser.error(
            f"--dataset {args.dataset}: not a folder. Build one: python -m dataset_builder build "
            "--mirrors DIR --out /tmp/corpus-real (DIR: git mirrors of the repos; or the embedded samples)"
        )
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here needs the Hub: fail fast if anything asks
    run_experiment(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
