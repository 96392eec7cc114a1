"""What a staged folder says it is: the Hub repo its card was rendered for, and its version.

Repo id: a card names its repo in the code users copy (`load_dataset("ORG/NAME")`,
`AutoPeftModelForCausalLM.from_pretrained("ORG/NAME")`), and a dataset's manifest.json records the id its
card was rendered with (`config.hub_repo_id`). Pushing that folder to another repo would publish a card that
loads somebody else's repo, so publishing refuses it (`staged_for_problem`); the fix is to stage again for the
right id.

Model version: a model repo is tagged on its own, not with the corpus version (a model retrained on the same
corpus would find that tag taken). The version is

    v<corpus version>-<first 8 hex of sha256(recipe, corpus version, training code)>

e.g. `v1.0.0-3f2a9c1d` (`dev-…` when the corpus version is unknown). The recipe is the run's recipe.yaml
without where the data came from (`dataset`, `dataset_revision`: the corpus version stands for it), so the
same run staged for any org gets the same version; the training code is the source of the modules that shape
the adapter (`model_code()`). Same inputs, same version: a rerun that changed nothing publishes nothing new.
Staging writes it, with its inputs, to `version.json`, which is published with the model.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from flyte_llama_common.ids import is_hub_id
from model_card.model_card import split_front_matter

VERSION_FILE = "version.json"
SCHEME = "v<corpus version>-<sha256(recipe, corpus version, training code)[:8]> (model_card/identity.py)"
# The training entry points; the version covers them and every training module they import (found by
# reading their imports, so a module split off later is covered too), less the parsers (help text only).
MODEL_CODE_ROOTS = ("train.py", "pretrain.py")
NOT_MODEL_CODE = ("options.py",)
_TRAINING = Path(__file__).resolve().parent.parent / "training"
# Recipe keys that say where the data was read from, not what was trained.
LOCATION_KEYS = ("dataset_name", "dataset", "dataset_revision")  # `dataset`: runs from before TRL's name

# The calls of the cards' usage code that name their own repo.
_DATASET_CALL = re.compile(r"""load_dataset\(\s*["']([^"']+)["']""")
_MODEL_CALL = re.compile(r"""from_pretrained\(\s*(?:base\s*,\s*)?["']([^"']+)["']""")


def _sha256(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def model_code() -> list[str]:
    """The files under training/ whose code shapes the adapter: MODEL_CODE_ROOTS and their imports."""
    found, pending = set(), [r for r in MODEL_CODE_ROOTS if (_TRAINING / r).is_file()]
    while pending:
        name = pending.pop()
        if name in found or name in NOT_MODEL_CODE:
            continue
        found.add(name)
        for node in ast.walk(ast.parse((_TRAINING / name).read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "training":
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("training."):
                modules = [node.module.split(".")[1]]
            elif isinstance(node, ast.Import):
                modules = [a.name.split(".")[1] for a in node.names if a.name.startswith("training.")]
            else:
                continue
            pending += [f"{m}.py" for m in modules if (_TRAINING / f"{m}.py").is_file()]
    return sorted(found)


@cache
def training_code_sha256() -> str:
    """sha256 over model_code() (names included), as dataset_builder/fingerprint.py keys its caches."""
    h = hashlib.sha256()
    for name in model_code():
        h.update(name.encode() + b"\0" + (_TRAINING / name).read_bytes() + b"\0")
    return h.hexdigest()


def corpus_version(manifest: dict | None, training_log: dict | None) -> str | None:
    """The corpus version a run trained on: the dataset folder's manifest, else the dataset revision the run
    recorded when it is a version tag (`v1.0.0`; a commit SHA or a branch is no version)."""
    if manifest and isinstance(manifest.get("version"), str):
        return manifest["version"]
    revision = (((training_log or {}).get("summary") or {}).get("dataset") or {}).get("revision")
    if isinstance(revision, str) and re.fullmatch(r"v\d+(\.\d+)*", revision):
        return revision[1:]
    return None


def model_version(recipe: Any, corpus: str | None, code_sha256: str | None = None) -> dict[str, Any]:
    """version.json: the model version (see the module doc) and what it was derived from."""
    recipe_view = (
        {k: v for k, v in recipe.items() if k not in LOCATION_KEYS} if isinstance(recipe, dict) else recipe
    )
    code = code_sha256 or training_code_sha256()
    recipe_sha = _sha256(recipe_view)
    digest = _sha256({"recipe": recipe_sha, "corpus_version": corpus, "code": code})[:8]
    return {
        "version": f"v{corpus}-{digest}" if corpus else f"dev-{digest}",
        "corpus_version": corpus,
        "recipe_sha256": recipe_sha,
        "training_code_sha256": code,
        "scheme": SCHEME,
    }


def _json_field(path: Path, *keys: str) -> Any:
    """The value at `keys` in a JSON file, None when the file or the value is missing or unreadable
    (check_folder reports a malformed file; here it only means there is nothing to compare)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def staged_version(folder: Path, kind: str) -> str | None:
    """The version tag a staged folder was made for: a dataset's `v<manifest version>`, a model's
    version.json `version`; None when the folder does not record one."""
    if kind == "dataset":
        version = _json_field(folder / "manifest.json", "version")
        return f"v{version}" if isinstance(version, str) and version else None
    version = _json_field(folder / VERSION_FILE, "version")
    return version if isinstance(version, str) and version else None


def card_repo_ids(readme_text: str, kind: str) -> list[str]:
    """The Hub ids the card's usage code loads (`load_dataset` / `from_pretrained`), sorted, unique.
    A local base (`./base`, `local:base`) is the demo card's, not a repo: left out."""
    calls = _DATASET_CALL if kind == "dataset" else _MODEL_CALL
    return sorted({m for m in calls.findall(readme_text) if "/" in m and is_hub_id(m)})


def staged_for(folder: Path, kind: str, repo_id: str) -> list[str]:
    """The repo ids other than `repo_id` that the folder's card (and a dataset's manifest) was rendered
    for. A model card also loads other repos (its base, a merged model): only ids with the card's own
    model name (model-index) count, and that name must be `repo_id`'s."""
    readme = folder / "README.md"
    try:
        text = readme.read_text(encoding="utf-8", errors="replace") if readme.is_file() else ""
    except OSError:
        text = ""  # check_folder reports an unreadable card
    ids = set(card_repo_ids(text, kind))
    if kind == "dataset":  # a dataset card loads no other dataset
        hub_id = _json_field(folder / "manifest.json", "config", "hub_repo_id")
        ids |= {hub_id} if isinstance(hub_id, str) and hub_id else set()
        return sorted(ids - {repo_id})
    try:
        meta = split_front_matter(text)
    except yaml.YAMLError:
        meta = None  # check_folder reports a broken front matter
    index = meta.get("model-index") if isinstance(meta, dict) else None
    name = index[0].get("name") if isinstance(index, list) and index and isinstance(index[0], dict) else None
    name = name if isinstance(name, str) and name else repo_id.split("/")[-1]
    own = sorted(i for i in ids if i.split("/")[-1] == name and i != repo_id)
    if not own and name != repo_id.split("/")[-1]:
        own = [f"{repo_id.split('/')[0]}/{name}"]  # the card's title and model-index name another repo
    return own


def staged_for_problem(folder: Path, kind: str, repo_id: str) -> str | None:
    """Why `folder` must not be pushed to `repo_id` (its card loads another repo), None when it may."""
    other = staged_for(folder, kind, repo_id)
    if not other:
        return None
    if kind == "dataset":
        fix = f"rebuild it with `python -m dataset_builder build --set hub_repo_id={repo_id} ...`"
    else:
        fix = f"re-stage it with `python -m model_card.stage --run RUN --repo-id {repo_id} ...`"
    return (
        f"{folder} was staged for {other[0]}, not --repo-id {repo_id}: its card would tell users to load "
        f"{other[0]}; {fix} (or push it to {other[0]})"
    )
