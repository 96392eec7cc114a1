"""The merged model as its own Hub repo: the base with the adapter merged in, servable from the repo root.

Serving engines (vLLM, TGI, Inference Endpoints) load a model from a repo root, never from a subfolder of
another repo, so `python -m model_card.stage ... --merged` stages a second folder beside the adapter's,
`hub/<name>-merged/`, pushed by `push.py model` to its own repo id like any staged model folder:

    config.json, generation_config.json, model.safetensors   peft `merge_and_unload()` of base + adapter
    tokenizer files                                          copied from the staged adapter folder
    eval_results.json, version.json                          the adapter's (same numbers, same version tag)
    README.md                                                its card: base_model_relation merge, transformers

The merge loads the base the run trained on (a download when the adapter names a Hub id); `merge_base`
points it at a local copy instead. Its card carries the adapter's model-index and links to the adapter repo.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard, ModelCardData

from flyte_llama_common.atomic import staged_dir
from flyte_llama_common.ids import is_hub_id
from model_card.identity import VERSION_FILE
from model_card.model_card import (
    TAGS,
    TEMPLATES,
    WIDGET,
    build_eval_results,
    fim_usage,
    is_code_llama,
    resolve_dataset,
)
from model_card.publish import TOKENIZER_FILES
from model_card.safety import (
    is_local_path,
    local_path_leaks,
    portable_path,
    read_json_object,
    regular_files,
)

MERGED_TEMPLATE = TEMPLATES / "merged_card.md.j2"
# A merged model is no adapter: the Hub would list it under PEFT adapters with these tags.
MERGED_TAGS = [t for t in TAGS if t not in ("lora", "peft")] + ["merge"]
# Written by save_pretrained and read by a server; checked for local paths like the adapter's metadata.
MODEL_METADATA = ("config.json", "generation_config.json")


class MergeError(ValueError):
    """The merged model cannot be built or staged; the message says what to do."""


def build_merged(
    adapter_dir: Path, out_dir: Path, *, base: str | None = None, revision: str | None = None
) -> dict[str, Path]:
    """Merge the adapter of `adapter_dir` into its base (peft `merge_and_unload`) and save it (safetensors)
    in `out_dir`; returns {file name: file}. `base`: where to load the base from (default: the adapter's
    `base_model_name_or_path` at its `revision`, a download for a Hub id)."""
    from peft import PeftModel  # heavy imports, only when a merged model is asked for
    from transformers import AutoModelForCausalLM

    config = read_json_object(adapter_dir / "adapter_config.json", "re-save the adapter")
    source = base or config.get("base_model_name_or_path")
    if not isinstance(source, str) or not source:
        raise MergeError(
            f"{adapter_dir}/adapter_config.json names no base model: pass --merge-base PATH_OR_HUB_ID"
        )
    revision = revision if base else revision or config.get("revision")
    try:
        model = AutoModelForCausalLM.from_pretrained(source, revision=revision, dtype="auto")
    except OSError as err:
        raise MergeError(
            f"cannot load the base model {source!r} to merge into ({err}); pass --merge-base with a local "
            "copy of it"
        ) from None
    merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    merged.save_pretrained(str(out_dir))
    return {p.relative_to(out_dir).as_posix(): p for p in sorted(out_dir.rglob("*")) if p.is_file()}


def render_merged_card(
    *,
    repo_id: str,
    adapter_repo_id: str,
    eval_results: dict,
    adapter_config: dict,
    training_log: dict | None = None,
    model_version: dict | None = None,
    dtype: str | None = None,
    allow_local_dataset: bool = False,
) -> ModelCard:
    """README.md of the merged repo: the adapter's base, evaluation and infilling prompt, as a merge."""
    dataset = resolve_dataset(eval_results, training_log, None, allow_local_dataset)
    base_id = adapter_config.get("base_model_name_or_path")
    base = {"id": base_id, "revision": adapter_config.get("revision"), "is_hub": is_hub_id(base_id)}
    llama = is_code_llama(base_id)
    card_data = ModelCardData(
        base_model=base_id if base["is_hub"] else None,
        base_model_relation="merge" if base["is_hub"] else None,
        library_name="transformers",
        pipeline_tag="text-generation",
        license="llama2" if llama else None,
        datasets=[dataset["id"]] if dataset["is_hub"] else None,
        language=["code"],
        tags=MERGED_TAGS,
        widget=WIDGET,
        model_name=repo_id.split("/")[-1],
        eval_results=build_eval_results(eval_results, dataset) or None,
    )
    return ModelCard.from_template(
        card_data,
        template_path=str(MERGED_TEMPLATE),
        repo_id=repo_id,
        adapter_repo_id=adapter_repo_id,
        base=base,
        code_llama=llama,
        dataset=dataset,
        dtype=dtype,
        model_version=model_version or {},
        fim_usage=fim_usage(),
    )


def _model_leaks(files: dict[str, Path]) -> list[str]:
    leaks = []
    for name in MODEL_METADATA:
        if name in files:
            data = read_json_object(files[name], "re-stage the merged model")
            leaks += [f"{name}: {k} = {v!r}" for k, v in data.items() if is_local_path(v)]
    return leaks


def stage_merged(
    adapter_folder: Path,
    out_dir: Path,
    *,
    repo_id: str,
    adapter_repo_id: str,
    run_adapter: Path,
    merge_base: str | None = None,
    merge_base_revision: str | None = None,
    allow_local_dataset: bool = False,
) -> Path:
    """Build the merged repo folder `out_dir` (replaced atomically) from the staged `adapter_folder` (its
    tokenizer, eval_results.json, version.json, base id) and the run's adapter `run_adapter`, whose
    recorded base is what the adapter was trained on (or `merge_base`, a local copy of it)."""
    adapter_config = read_json_object(adapter_folder / "adapter_config.json", "re-stage the adapter")
    eval_results = read_json_object(adapter_folder / "eval_results.json", "re-stage the adapter")
    log_path, version_path = adapter_folder / "training_log.json", adapter_folder / VERSION_FILE
    training_log = read_json_object(log_path, "re-stage the adapter") if log_path.is_file() else None
    version = read_json_object(version_path, "re-stage the adapter") if version_path.is_file() else None
    base = adapter_config.get("base_model_name_or_path")
    if is_local_path(base):  # a demo's local base: named as the run names it, never by this machine's path
        adapter_config["base_model_name_or_path"] = portable_path(base, run_adapter.parent)
    with staged_dir(out_dir) as tmp:
        build_merged(run_adapter, tmp, base=merge_base, revision=merge_base_revision)
        for name in [*TOKENIZER_FILES, "eval_results.json", VERSION_FILE]:
            if (adapter_folder / name).is_file():
                shutil.copy2(adapter_folder / name, tmp / name)
        config: dict[str, Any] = json.loads((tmp / "config.json").read_text(encoding="utf-8"))
        card = render_merged_card(
            repo_id=repo_id,
            adapter_repo_id=adapter_repo_id,
            eval_results=eval_results,
            adapter_config=adapter_config,
            training_log=training_log,
            model_version=version,
            dtype=str(config.get("dtype") or config.get("torch_dtype") or "") or None,
            allow_local_dataset=allow_local_dataset,
        )
        card.save(tmp / "README.md")
        files = regular_files(tmp)
        leaks = local_path_leaks(files) + _model_leaks(files)
        if leaks:
            raise MergeError(f"a merged file would publish a local path ({leaks[0]}): remove it from the run")
        for path in [tmp, *tmp.rglob("*")]:  # readable like any checkout, as the adapter's folder
            path.chmod(0o755 if path.is_dir() else 0o644)
    return out_dir
