"""Assemble the staged Hub model folder `hub/flyte-llama-<recipe>/` from a run (docs/ARCHITECTURE.md §5).

    python -m model_card.stage --run RUN --repo-id ORG/flyte-llama-<recipe>
        [--dataset-id ORG/flyte-llama-corpus] [--eval-results RUN/eval/eval_results.json]
        [--manifest DATASET/manifest.json]
        [--base-model-id ORG/NAME [--base-model-revision REV]] [--out hub/flyte-llama-<recipe>]

Copies the allow-listed files of RUN/adapter/ (never PEFT's auto-generated README, pickles or checkpoints),
eval_results.json and its infilling tasks file, renders the plots and the model card. The folder is built
in a temp dir beside the target and renamed into place, so a failed staging leaves the old folder intact.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import yaml

from dataset_builder.atomic import replace_dir
from model_card.model_card import CardError, render_model_card
from model_card.plots import render_plots
from model_card.publish import ALLOW, TOKENIZER_FILES, matches

# From the adapter folder: everything the allow-list takes except the card, which is rendered here.
ADAPTER_PATTERNS = [p for p in ALLOW["model"] if p != "README.md" and not p.startswith(("merged/", "plots/"))]


class StageError(ValueError):
    """The run folder cannot be staged; the message says what is missing."""


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise StageError(f"cannot read {path}: {err}") from None


def stage_model(
    adapter_dir: Path,
    eval_results_path: Path,
    out_dir: Path,
    *,
    repo_id: str,
    dataset_id: str | None = None,
    manifest_path: Path | None = None,
    base_model_id: str | None = None,
    base_model_revision: str | None = None,
    allow_local_dataset: bool = False,
) -> Path:
    """Build `out_dir` (replacing it atomically) and return it."""
    if not (adapter_dir / "adapter_config.json").is_file() or not any(adapter_dir.glob("*.safetensors")):
        raise StageError(f"{adapter_dir} has no adapter_config.json + *.safetensors: is it RUN/adapter?")
    if not eval_results_path.is_file():
        raise StageError(f"{eval_results_path} not found: run `python -m training evaluate ... --out` first")
    eval_results = _read_json(eval_results_path)
    tasks_name = (eval_results.get("infilling") or {}).get("tasks_file")
    tasks_path = eval_results_path.parent / tasks_name if tasks_name else None
    if tasks_path and not tasks_path.is_file():
        raise StageError(f"eval_results.json names {tasks_name} but {tasks_path} does not exist")

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        for src in sorted(adapter_dir.iterdir()):
            if src.is_file() and any(matches(src.name, p) for p in ADAPTER_PATTERNS):
                shutil.copy2(src, tmp / src.name)
        adapter_config = _read_json(tmp / "adapter_config.json")
        if base_model_id:
            # The run may have loaded the base from a local path; users need the Hub id (FACTS.md).
            adapter_config["base_model_name_or_path"] = base_model_id
            adapter_config["revision"] = base_model_revision
            (tmp / "adapter_config.json").write_text(
                json.dumps(adapter_config, indent=2, sort_keys=True) + "\n"
            )
        shutil.copy2(eval_results_path, tmp / "eval_results.json")
        if tasks_path:
            shutil.copy2(tasks_path, tmp / "infilling_tasks.jsonl")
            eval_results["infilling"]["tasks_file"] = "infilling_tasks.jsonl"
        training_log = (
            _read_json(tmp / "training_log.json") if (tmp / "training_log.json").is_file() else None
        )
        recipe = (
            yaml.safe_load((tmp / "recipe.yaml").read_text()) if (tmp / "recipe.yaml").is_file() else None
        )
        plots = render_plots(training_log, eval_results, tmp)
        card = render_model_card(
            repo_id=repo_id,
            eval_results=eval_results,
            adapter_config=adapter_config,
            training_log=training_log,
            recipe=recipe if isinstance(recipe, dict) else None,
            manifest=_read_json(manifest_path) if manifest_path else None,
            plots=plots,
            dataset_id=dataset_id,
            allow_local_dataset=allow_local_dataset,
        )
        card.save(tmp / "README.md")
        # mkdtemp/mkstemp make private files; a folder meant for publishing is readable like any checkout.
        for path in [tmp, *tmp.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def build_merged(adapter_dir: Path, out_dir: Path) -> dict[str, Path]:
    """Merge the adapter into its base (peft `merge_and_unload`) and save it; returns repo path → file
    under `merged/`. Loads the base named in adapter_config.json (a download for a Hub base)."""
    from peft import AutoPeftModelForCausalLM  # heavy import, only for --merged

    model = AutoPeftModelForCausalLM.from_pretrained(str(adapter_dir), dtype="auto")
    model.merge_and_unload().save_pretrained(str(out_dir))  # safetensors
    for name in TOKENIZER_FILES:
        if (adapter_dir / name).is_file():
            shutil.copy2(adapter_dir / name, out_dir / name)
    return {
        f"merged/{p.relative_to(out_dir).as_posix()}": p for p in sorted(out_dir.rglob("*")) if p.is_file()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run", type=Path, required=True, help="training run folder (holds adapter/)")
    parser.add_argument("--repo-id", required=True, help="the Hub model repo this folder will be pushed to")
    parser.add_argument(
        "--eval-results",
        type=Path,
        help="default: RUN/eval/eval_results.json (where job.py and the README put it)",
    )
    parser.add_argument("--dataset-id", help="Hub id of the training dataset (overrides eval_results.json)")
    parser.add_argument("--manifest", type=Path, help="the dataset folder's manifest.json (pinned repo SHAs)")
    parser.add_argument("--base-model-id", help="write this Hub id into adapter_config.json")
    parser.add_argument("--base-model-revision", help="pinned revision of --base-model-id")
    parser.add_argument("--out", type=Path, help="default: hub/flyte-llama-<last part of --repo-id>")
    parser.add_argument(
        "--allow-local-dataset",
        action="store_true",
        help="offline demo: accept a local dataset path (the card is then marked not publishable)",
    )
    args = parser.parse_args(argv)
    name = args.repo_id.split("/")[-1]
    out = args.out or Path("hub") / (name if name.startswith("flyte-llama") else f"flyte-llama-{name}")
    try:
        staged = stage_model(
            args.run / "adapter",
            args.eval_results or args.run / "eval" / "eval_results.json",
            out,
            repo_id=args.repo_id,
            dataset_id=args.dataset_id,
            manifest_path=args.manifest,
            base_model_id=args.base_model_id,
            base_model_revision=args.base_model_revision,
            allow_local_dataset=args.allow_local_dataset,
        )
    except (StageError, CardError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"staged {staged}")
    for path in sorted(p for p in staged.rglob("*") if p.is_file()):
        print(f"  {path.relative_to(staged)}  ({path.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
