"""Assemble the staged Hub model folder `hub/flyte-llama-<recipe>/` from a run (docs/ARCHITECTURE.md §5).

    python -m model_card.stage --run RUN --repo-id ORG/flyte-llama-<recipe>
        [--dataset-id ORG/flyte-llama-corpus] [--eval-results RUN/eval/eval_results.json]
        [--manifest DATASET/manifest.json]
        [--base-model-id ORG/NAME [--base-model-revision REV]] [--out hub/flyte-llama-<recipe>]
        [--merged [--merged-repo-id ORG/NAME-merged] [--merge-base PATH]]

Copies the allow-listed files of RUN/adapter/ (never PEFT's auto-generated README, pickles or checkpoints),
eval_results.json and its infilling tasks file, renders the plots and the model card. The folder is built
in a temp dir beside the target and renamed into place, so a failed staging leaves the old folder intact.

Everything in it is published, so staging also makes it safe to publish: a link in RUN/adapter/ or a tasks
file leading out of the run is refused; local paths recorded by the run become the Hub ids given here
(--repo-id for the adapter, --dataset-id, --base-model-id) or run-relative `./x` / `local:NAME`; and
adapter_config.json is written canonically (sorted keys and target modules: PEFT stores a set), so the same
run always stages to the same bytes. The one absolute path kept is a local base's in adapter_config.json
(the staged demo folder must load); the push refuses that folder until --base-model-id is given.

--merged also stages the adapter merged into its base as its own repo folder (`<out>-merged`, for
--merged-repo-id, default `<--repo-id>-merged`; model_card/merged.py): serving engines load a model from a
repo root, never from a subfolder of the adapter's repo. `push.py model` pushes either folder.
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

from flyte_llama_common.atomic import staged_dir
from flyte_llama_common.ids import is_hub_id
from flyte_llama_common.schemas import InfillingConfigError, tasks_file_beside
from model_card.identity import VERSION_FILE, corpus_version, model_version
from model_card.model_card import CardError, render_model_card
from model_card.plots import render_plots
from model_card.publish import ALLOW, matches
from model_card.safety import (
    LOCAL_BASE,
    UnsafeError,
    check_repo_id,
    eval_results_shape,
    is_local_path,
    local_path_leaks,
    portable_path,
    portable_tree,
    read_json_object,
    regular_files,
)
from training.eval_results import EvalResultsError, validate_results

# From the adapter folder: everything the allow-list takes except the card, which is rendered here.
ADAPTER_PATTERNS = [p for p in ALLOW["model"] if p != "README.md" and not p.startswith("plots/")]
RERUN = "re-run `python -m training evaluate`"
SET_LIKE = ("target_modules", "exclude_modules")  # PEFT keeps these as sets: their order is arbitrary


class StageError(ValueError):
    """The run folder cannot be staged; the message says what is missing."""


def _read_json(path: Path, fix: str = "is it a file the run wrote?") -> dict:
    try:
        return read_json_object(path, fix)
    except UnsafeError as err:
        raise StageError(str(err)) from None


def _check_ids(repo_id: str, dataset_id: str | None, base_model_id: str | None) -> None:
    try:
        check_repo_id(repo_id)
        for option, value in (("--dataset-id", dataset_id), ("--base-model-id", base_model_id)):
            if value is not None:
                check_repo_id(value, option, require_org=False)
    except UnsafeError as err:
        raise StageError(str(err)) from None


def _adapter_files(adapter_dir: Path) -> dict[str, Path]:
    """The allow-listed files of RUN/adapter; a link is followed only when it stays inside the folder."""
    root, found = adapter_dir.resolve(), {}
    for src in sorted(adapter_dir.iterdir()):
        if not any(matches(src.name, p) for p in ADAPTER_PATTERNS) or src.is_dir():
            continue
        if not src.resolve().is_relative_to(root):
            raise StageError(
                f"{src} is a link to {src.resolve()}, outside {adapter_dir}: copy the real file into the "
                "adapter folder (only the run's own files are published)"
            )
        if not src.is_file():
            raise StageError(f"{src} is not a regular file: remove it or replace it with the real file")
        found[src.name] = src
    return found


def _eval_results(path: Path) -> dict[str, Any]:
    results = _read_json(path, RERUN)
    shape = eval_results_shape(results)
    if shape:
        raise StageError(f"{path}: {shape} (docs/ARCHITECTURE.md §4): {RERUN}")
    return results


def _canonical_adapter_config(config: dict[str, Any]) -> str:
    """Byte-reproducible adapter_config.json: sorted keys, set-like module lists sorted."""
    for key in SET_LIKE:
        if isinstance(config.get(key), list):
            config[key] = sorted(config[key], key=str)
    return json.dumps(config, indent=2, sort_keys=True) + "\n"


def _adapter_config(path: Path, run: Path, base_model_id: str | None, base_revision: str | None) -> dict:
    config = _read_json(path, "re-save the adapter (python -m training train)")
    recorded = config.get("base_model_name_or_path")
    if recorded is not None and not isinstance(recorded, str):
        raise StageError(f"{path}: base_model_name_or_path must be a string, not {type(recorded).__name__}")
    for key in SET_LIKE:
        value = config.get(key)
        if (
            value is not None
            and not isinstance(value, str)
            and not (isinstance(value, list) and all(isinstance(v, str) for v in value))
        ):
            raise StageError(f"{path}: {key} must be a module name or a list of them")
    recorded = recorded or ""
    if base_model_id:
        # The run may have loaded the base from a local path; users need the Hub id (FACTS.md).
        config["base_model_name_or_path"] = base_model_id
        config["revision"] = base_revision
    elif recorded.startswith(("./", "../")):
        # A local base recorded relative to the run (RUN/adapter/..): the local staged folder must still
        # find it. publish refuses any base that is not a Hub id, so this path never leaves the machine.
        config["base_model_name_or_path"] = str((run.resolve() / recorded).resolve())
    return config


def _hub_ids(
    results: dict, log: dict | None, recipe: Any, *, repo_id: str, dataset_id: str | None, base_id: str | None
) -> None:
    """Put the Hub ids staging knows in place of the local places the run recorded (in place)."""

    def swap(block: Any, key: str, hub: str | None) -> None:
        if hub and isinstance(block, dict) and isinstance(block.get(key), str) and not is_hub_id(block[key]):
            block[key] = hub

    infill = (results.get("settings") or {}).get("infill")
    if isinstance(infill, dict) and infill.get("tasks_from") == (results.get("dataset") or {}).get("id"):
        swap(infill, "tasks_from", dataset_id)  # --infill-from the same local corpus folder
    swap(results.get("dataset"), "id", dataset_id)
    swap((results.get("models") or {}).get("base"), "id", base_id)
    swap((results.get("models") or {}).get("adapter"), "id", repo_id)  # this folder is that adapter
    swap(((log or {}).get("summary") or {}).get("dataset"), "id", dataset_id)
    swap(recipe, "dataset_name", dataset_id)
    swap(recipe, "dataset", dataset_id)  # run folders trained before the key took TRL's name
    swap(recipe, "model_name_or_path", base_id)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _training_log(path: Path) -> dict:
    log = _read_json(path)
    summary, history = log.get("summary", {}), log.get("log_history", [])
    if not isinstance(summary, dict) or not isinstance(summary.get("dataset", {}), dict | None):
        raise StageError(f"{path}: summary (and its dataset) must be an object")
    if not isinstance(history, list) or not all(isinstance(e, dict) for e in history):
        raise StageError(f"{path}: log_history must be a list of objects")
    numbers = ("global_step", "train_tokens", "train_runtime_s", "fim_rate", "spm_rate", "max_length")
    bad = [f"summary.{k}" for k in numbers if summary.get(k) is not None and not _number(summary[k])]
    bad += [
        f"log_history[{i}].{k}"
        for i, entry in enumerate(history)
        for k in ("step", "loss", "eval_loss")
        if entry.get(k) is not None and not _number(entry[k])
    ]
    if bad:
        raise StageError(f"{path}: {bad[0]} must be a number")
    return log


def _recipe(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise StageError(f"{path} is not valid YAML ({type(err).__name__})") from None


API_TASKS_FILE = "api_usage_tasks.jsonl"
EXEC_TASKS_FILE = "execution_tasks.jsonl"
# The task files beside eval_results.json that are published with the model: (results section, file name).
EXTRA_TASK_FILES = (("api_usage", API_TASKS_FILE), ("execution", EXEC_TASKS_FILE))


def _task_file(eval_results_path: Path, eval_results: dict, section: str, filename: str) -> Path | None:
    """The tasks of `section` beside eval_results.json, when the results name them: a regular file of that
    folder (never a link), or a StageError; the results must name exactly `filename`."""
    name = (eval_results.get(section) or {}).get("tasks_file")
    if name is None:
        return None
    path = eval_results_path.parent / filename
    if name != filename or path.is_symlink() or not path.is_file():
        raise StageError(
            f"{eval_results_path}: {section}.tasks_file must be {filename}, a file beside it: "
            "re-run `python -m training evaluate`"
        )
    return path


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
    merged_repo_id: str | None = None,
    merge_base: str | None = None,
) -> Path:
    """Build `out_dir` (replacing it atomically) and return it. With `merged_repo_id`, also the merged
    model's own repo folder `<out_dir>-merged` (model_card/merged.py), merged into `merge_base` (default:
    the base the run recorded); the adapter folder is replaced only once the merged one is in place."""
    _check_ids(repo_id, dataset_id, base_model_id)
    if merged_repo_id is not None:
        _check_ids(merged_repo_id, None, None)
        if merged_repo_id == repo_id:
            raise StageError(
                f"--merged-repo-id {merged_repo_id} is the adapter's repo: serving engines load a merged "
                f"model from a repo root, so it needs its own id, e.g. {repo_id}-merged"
            )
    if not (adapter_dir / "adapter_config.json").is_file() or not any(adapter_dir.glob("*.safetensors")):
        raise StageError(f"{adapter_dir} has no adapter_config.json + *.safetensors: is it RUN/adapter?")
    if not eval_results_path.is_file():
        raise StageError(f"{eval_results_path} not found: run `python -m training evaluate ... --out` first")
    run, eval_dir = adapter_dir.parent, eval_results_path.parent
    eval_results = _eval_results(eval_results_path)
    try:
        tasks_path = tasks_file_beside(eval_results_path, eval_results)
    except InfillingConfigError as err:
        raise StageError(str(err)) from None
    extra_tasks = {
        filename: found
        for section, filename in EXTRA_TASK_FILES
        if (found := _task_file(eval_results_path, eval_results, section, filename)) is not None
    }
    # Every input is read and checked before the temp folder exists: a refusal writes nothing.
    sources = _adapter_files(adapter_dir)
    manifest = _read_json(manifest_path) if manifest_path else None
    adapter_config = _adapter_config(sources["adapter_config.json"], run, base_model_id, base_model_revision)
    training_log = _training_log(sources["training_log.json"]) if "training_log.json" in sources else None
    recorded_recipe = _recipe(sources["recipe.yaml"]) if "recipe.yaml" in sources else None
    recipe = copy.deepcopy(recorded_recipe)
    # From the run's own recipe, before any Hub id is put in: the same run has one version for every org.
    version = model_version(recorded_recipe, corpus_version(manifest, training_log))
    ids = {"repo_id": repo_id, "dataset_id": dataset_id, "base_id": base_model_id}
    _hub_ids(eval_results, training_log, recipe, **ids)
    # Local places left are written as the run's own files write them: relative, never absolute.
    eval_results, recipe = portable_tree(eval_results, eval_dir), portable_tree(recipe, run)
    training_log = portable_tree(training_log, run)
    if tasks_path:
        eval_results["infilling"]["tasks_file"] = "infilling_tasks.jsonl"
    try:
        validate_results(eval_results)
    except EvalResultsError as err:
        raise StageError(f"{eval_results_path} does not follow docs/ARCHITECTURE.md §4: {err}") from None

    with staged_dir(out_dir) as tmp:
        for name, src in sources.items():
            shutil.copy2(src, tmp / name)
        (tmp / "adapter_config.json").write_text(_canonical_adapter_config(adapter_config))
        if tasks_path:
            shutil.copy2(tasks_path, tmp / "infilling_tasks.jsonl")
        for filename, found in extra_tasks.items():
            shutil.copy2(found, tmp / filename)
        (tmp / "eval_results.json").write_text(json.dumps(eval_results, indent=2) + "\n")
        (tmp / VERSION_FILE).write_text(json.dumps(version, indent=2, sort_keys=True) + "\n")
        if training_log is not None:
            (tmp / "training_log.json").write_text(json.dumps(training_log, indent=2) + "\n")
        if recipe != recorded_recipe:  # else the run's own bytes (and comments) stay
            (tmp / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
        base = adapter_config.get("base_model_name_or_path")
        # The card names a local base as the run does (./base), never by this machine's absolute path.
        card_config = adapter_config | (
            {"base_model_name_or_path": portable_path(base, run)} if is_local_path(base) else {}
        )
        plots = render_plots(training_log, eval_results, tmp)
        card = render_model_card(
            merged_repo_id=merged_repo_id,
            repo_id=repo_id,
            eval_results=eval_results,
            adapter_config=card_config,
            training_log=training_log,
            recipe=recipe if isinstance(recipe, dict) else None,
            manifest=manifest,
            plots=plots,
            dataset_id=dataset_id,
            allow_local_dataset=allow_local_dataset,
            model_version=version,
        )
        card.save(tmp / "README.md")
        try:
            leaks = [x for x in local_path_leaks(regular_files(tmp)) if not x.startswith(LOCAL_BASE)]
        except UnsafeError as err:
            raise StageError(str(err)) from None
        if leaks:
            raise StageError(f"a staged file would publish a local path ({leaks[0]}): remove it from the run")
        # mkdtemp/mkstemp make private files; a folder meant for publishing is readable like any checkout.
        for path in [tmp, *tmp.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        if merged_repo_id is not None:
            _stage_merged(tmp, out_dir, merged_repo_id, repo_id, adapter_dir, merge_base, allow_local_dataset)
    return out_dir


def merged_dir(out_dir: Path) -> Path:
    """Where the merged model's repo folder is staged: beside the adapter's, `<name>-merged`."""
    return out_dir.with_name(f"{out_dir.name}-merged")


def _stage_merged(
    staged: Path,
    out_dir: Path,
    repo_id: str,
    adapter_id: str,
    run_adapter: Path,
    base: str | None,
    local: bool,
) -> None:
    from model_card.merged import MergeError, stage_merged  # imports peft/torch: only for --merged

    # Merged from the run's own adapter folder: its config names the base the run trained on (the staged
    # one may name the Hub id instead, which the merge would download).
    recorded = _adapter_config(run_adapter / "adapter_config.json", run_adapter.parent, None, None)
    try:
        stage_merged(
            staged,
            merged_dir(out_dir),
            repo_id=repo_id,
            adapter_repo_id=adapter_id,
            run_adapter=run_adapter,
            merge_base=base or recorded.get("base_model_name_or_path"),
            merge_base_revision=None if base else recorded.get("revision"),
            allow_local_dataset=local,
        )
    except (MergeError, UnsafeError) as err:
        raise StageError(str(err)) from None


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
    parser.add_argument(
        "--merged",
        action="store_true",
        help="also stage the adapter merged into its base as its own repo folder, <out>-merged, for "
        "--merged-repo-id (servers load a model from a repo root; push it with `push.py model`)",
    )
    parser.add_argument("--merged-repo-id", help="the merged model's Hub repo (default: <--repo-id>-merged)")
    parser.add_argument(
        "--merge-base",
        help="load the base to merge into from here (a local copy or a Hub id; default: the base the "
        "run recorded)",
    )
    args = parser.parse_args(argv)
    merged_id = args.merged_repo_id or (f"{args.repo_id}-merged" if args.merged or args.merge_base else None)
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
            merged_repo_id=merged_id,
            merge_base=args.merge_base,
        )
    except (StageError, CardError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for folder, repo in ((staged, args.repo_id), (merged_dir(staged), merged_id)):
        if repo is None:
            continue
        print(f"staged {folder} for {repo}")
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            print(f"  {path.relative_to(folder)}  ({path.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
