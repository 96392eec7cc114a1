"""What may leave this machine in a published folder, shared by staging and publishing.

- Repo ids: huggingface_hub's own validator, plus the server-side rules of flyte_llama_common.ids.
- Files: regular files under the folder only. A symbolic link (to a file or a folder, even one pointing
  inside) is refused rather than followed, so a link can never upload the bytes of a file elsewhere.
- JSON inputs: read as objects or refused with a one-line reason, never a traceback.
- Local paths: an absolute path of this machine in a published metadata file tells the world its layout
  (user names, home folders); staging rewrites them, publishing refuses any that remain.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path
from typing import Any

from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from flyte_llama_common.ids import hub_id_problem


class UnsafeError(ValueError):
    """A repo id, file or folder that must not be published as it is; the message says what to do."""


def check_repo_id(repo_id: str | None, option: str = "--repo-id", *, require_org: bool = True) -> str:
    """`repo_id` if the Hub would accept it, else UnsafeError naming `option` and the rule it breaks."""
    if not repo_id or not isinstance(repo_id, str):
        raise UnsafeError(f"{option} is empty: pass ORG/NAME")
    if require_org and "/" not in repo_id:
        raise UnsafeError(f"{option} {repo_id!r} has no organisation: pass ORG/NAME, e.g. my-org/{repo_id}")
    try:
        validate_repo_id(repo_id)
        problem = hub_id_problem(repo_id, namespaced=require_org)  # what the Hub checks beyond that
        if problem:
            raise HFValidationError(f"it {problem}")
    except HFValidationError as err:
        reason = str(err).split(":")[0].rstrip(".")
        raise UnsafeError(
            f"{option} {repo_id!r} is not a repo id the Hub accepts ({reason}): pass a valid ORG/NAME"
        ) from None
    return repo_id


def regular_files(folder: Path) -> dict[str, Path]:
    """{posix path in the folder: file} for every file under `folder` (resolved once).

    Refuses symbolic links anywhere in the tree and anything that is not a regular file or a folder
    (a FIFO would hang the upload), and checks that every file's real path is under the real folder."""
    root = folder.resolve()
    found: dict[str, Path] = {}
    pending = [root]
    try:
        while pending:
            with os.scandir(pending.pop()) as entries:
                for entry in entries:
                    path = Path(entry.path)
                    shown = folder / path.relative_to(root)
                    if entry.is_symlink():
                        raise UnsafeError(
                            f"{shown} is a symbolic link (to {os.readlink(path)}); only regular files are "
                            "published: replace it with a copy of the file it points to, or remove it"
                        )
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(path)
                    elif entry.is_file(follow_symlinks=False) and path.resolve().is_relative_to(root):
                        found[path.relative_to(root).as_posix()] = path
                    else:
                        raise UnsafeError(f"{shown} is not a regular file inside {folder}: remove it")
    except OSError as err:
        raise UnsafeError(f"cannot read {err.filename or folder}: {err.strerror or err}") from None
    return dict(sorted(found.items()))


def read_json_object(path: Path, fix: str) -> dict[str, Any]:
    """The JSON object in `path`, or UnsafeError saying why it is unreadable, ending with `fix`."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise UnsafeError(f"{path} is not UTF-8 text: {fix}") from None
    except json.JSONDecodeError as err:
        raise UnsafeError(f"{path} is not valid JSON ({err.msg}, line {err.lineno}): {fix}") from None
    except OSError as err:
        raise UnsafeError(f"cannot read {path}: {err.strerror or err}") from None
    if not isinstance(data, dict):
        raise UnsafeError(f"{path} must hold a JSON object, not a {type(data).__name__}: {fix}")
    return data


def read_front_matter(readme: Path, fix: str) -> tuple[str, dict | None]:
    """(text, YAML metadata; None when it is not a mapping) of a README.md; unreadable: UnsafeError."""
    import yaml

    from model_card.model_card import split_front_matter

    try:
        text = readme.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise UnsafeError(f"cannot read {readme} as UTF-8 text ({type(err).__name__}): {fix}") from None
    try:
        meta = split_front_matter(text)
    except yaml.YAMLError:
        return text, None
    return text, meta if isinstance(meta, dict) else None


def _at(data: Any, keys: tuple[str, ...]) -> Any:
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def eval_results_shape(results: dict[str, Any]) -> str | None:
    """Where eval_results.json holds something else than an object where docs/ARCHITECTURE.md §4 has one
    (None: every object is an object, so readers can walk it; the values are checked elsewhere)."""
    places = [("dataset",), ("models",), ("settings",), ("settings", "infill")]
    places += [("perplexity",), ("infilling",)]
    for model in ("base", "adapter"):
        places += [("models", model)]
        places += [("perplexity", model, *g) for g in ((), ("overall",), ("by_repo",), ("by_language",))]
        places += [("infilling", model, *g) for g in ((), ("overall",), ("by_kind",), ("by_language",))]
    for keys in places:
        value = _at(results, keys)
        if value is not None and not isinstance(value, dict):
            return f"{'.'.join(keys)} must be an object, not a {type(value).__name__}"
        if keys[-1].startswith("by_") and value:
            bad = next((name for name, record in value.items() if not isinstance(record, dict)), None)
            if bad is not None:
                return f"{'.'.join(keys)}.{bad} must be an object"
    for keys in (("dataset", "id"), ("models", "base", "id"), ("models", "adapter", "id")):
        if _at(results, keys) is not None and not isinstance(_at(results, keys), str):
            return f"{'.'.join(keys)} must be a string"
    tasks_file = _at(results, ("infilling", "tasks_file"))
    if tasks_file is not None and not isinstance(tasks_file, str):
        return "infilling.tasks_file must be a file name"
    return None


# A whole value that is an absolute path: `/a/b...` (two parts at least, no spaces) or `~/...`.
_ABS_VALUE = re.compile(r"(?:/[^/\s]+){2,}/?|~/\S+")
# The same inside Markdown, not preceded by what would make it part of a URL or a relative path.
_ABS_IN_TEXT = re.compile(r"(?<![\w.:/~\\-])(?:/[\w.+@%=,-]+){2,}/?")
# Published metadata read as JSON/YAML and as text (tokenizer.json and the tasks' code are left alone: their
# strings are code, where `/usr/bin` is content, not a leak).
JSON_FILES = (
    "adapter_config.json",
    "eval_results.json",
    "training_log.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "manifest.json",
    "version.json",
)
YAML_FILES = ("recipe.yaml",)
TEXT_FILES = ("README.md",)
# A local base stays in adapter_config.json (a staged demo folder must load); the push refuses it by name.
LOCAL_BASE = "adapter_config.json: base_model_name_or_path ="


def is_local_path(value: Any) -> bool:
    """Whether a metadata value is an absolute filesystem path (which only means something on one machine)."""
    return isinstance(value, str) and bool(_ABS_VALUE.fullmatch(value))


def _walk(data: Any, where: str = "") -> list[tuple[str, str]]:
    """(place, value) of every absolute-path string value in a JSON/YAML tree."""
    if isinstance(data, dict):
        return [hit for k, v in data.items() for hit in _walk(v, f"{where}.{k}" if where else str(k))]
    if isinstance(data, list):
        return [hit for i, v in enumerate(data) for hit in _walk(v, f"{where}[{i}]")]
    return [(where, data)] if is_local_path(data) else []


def _text_hits(text: str) -> list[tuple[str, str]]:
    # Prose may contain `/a/b` for other reasons: only paths whose top folder exists here count.
    hits = [("text", m) for m in _ABS_IN_TEXT.findall(text) if os.path.exists("/" + m.split("/")[1])]
    return hits + [("text", m) for m in re.findall(r"(?<!\S)~/\S+", text)]


def local_path_leaks(files: dict[str, Path]) -> list[str]:
    """'file: place = value' for each absolute local path in the published metadata among `files`.
    A metadata file that does not parse is searched as text (its own reader reports it as malformed)."""
    import yaml

    leaks = []
    for name in JSON_FILES + YAML_FILES + TEXT_FILES:
        if name not in files:
            continue
        try:
            text = files[name].read_bytes().decode("utf-8", errors="replace")
        except OSError as err:
            raise UnsafeError(f"cannot read {files[name]}: {err.strerror or err}") from None
        hits = None
        if name not in TEXT_FILES:
            with contextlib.suppress(ValueError, yaml.YAMLError):  # unparsable: searched as text below
                hits = _walk(json.loads(text) if name in JSON_FILES else yaml.safe_load(text))
        if hits is None:
            hits = _text_hits(text)
        leaks += [f"{name}: {where} = {value!r}" for where, value in hits]
    return leaks


def portable_path(value: str, base: Path) -> str:
    """An absolute path as the run's files record local places (docs/ARCHITECTURE.md §4): relative to
    `base` as `./x`, or `../x` when at most two levels up, else `local:NAME`. Climbing up to a top-level
    folder (`/`, `/home`, `/tmp`) would name other users' folders, so that is `local:NAME` too. Neither form
    reads as a Hub id, so a rewritten local base or dataset is still recognised as local."""
    path = Path(os.path.normpath(Path(value).expanduser()))
    for root in dict.fromkeys((Path(os.path.abspath(base)), base.resolve())):
        rel = Path(os.path.relpath(path, root))
        ups = rel.parts.count("..")
        if ups == 0:
            return "./" if rel == Path(".") else f"./{rel.as_posix()}"
        if ups <= 2 and len(root.parts) - ups > 2:  # the common folder is below a top-level one
            return rel.as_posix()
    return f"local:{path.name}"


def portable_tree(data: Any, base: Path) -> Any:
    """`data` (a JSON/YAML tree) with every absolute-path string value made `portable_path`."""
    if isinstance(data, dict):
        return {k: portable_tree(v, base) for k, v in data.items()}
    if isinstance(data, list):
        return [portable_tree(v, base) for v in data]
    return portable_path(data, base) if is_local_path(data) else data
