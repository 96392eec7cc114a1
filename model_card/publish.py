"""Publish a staged folder to the Hub: check it, plan the upload, then ONE commit and an optional tag.

The plan is computed before anything is written: allow-listed files only (pickles and checkpoints are
refused and listed), files whose content the remote already has are skipped (sha256 for LFS files, the git
blob sha otherwise, from `list_repo_tree`), and remote files that the folder no longer has are deleted
(only paths the allow-list covers, so `.gitattributes` and hand-added files stay). Everything then goes in
one `create_commit`, so a second identical push makes no commit and nothing is ever half-published.

The Hub client is injected (`api`): tests pass a recording fake; `push.py` passes `HfApi(token=...)`.
The token comes from huggingface_hub's standard places (`get_token()`: HF_TOKEN, then the saved login)
and is only handed to `HfApi`, never printed or written.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, constants, get_token
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.utils import get_session

from flyte_llama_common.ids import is_hub_id
from model_card.identity import VERSION_FILE, staged_for_problem, staged_version
from model_card.model_card import check_card_metadata
from model_card.safety import (
    LOCAL_BASE,
    UnsafeError,
    check_repo_id,
    eval_results_shape,
    local_path_leaks,
    read_front_matter,
    read_json_object,
    regular_files,
)

TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model"]
MERGED_FILES = ["config.json", "generation_config.json", "*.safetensors", "model.safetensors.index.json"]
ALLOW = {
    "model": [
        "README.md",
        "*.safetensors",
        "adapter_config.json",
        *TOKENIZER_FILES,
        "eval_results.json",
        "infilling_tasks.jsonl",
        "api_usage_tasks.jsonl",
        "execution_tasks.jsonl",
        "training_log.json",
        "recipe.yaml",
        VERSION_FILE,
        "plots/*.png",
    ],
    # The merged model's own repo (model_card/merged.py): what a server loads from the root, and its card.
    "merged": ["README.md", *MERGED_FILES, *TOKENIZER_FILES, "eval_results.json", VERSION_FILE],
    "dataset": [
        "README.md",
        "manifest.json",
        "data/*.parquet",
        "infilling/*.parquet",
        "api_usage/*.parquet",
        "execution/*.parquet",
    ],
}
# Paths an earlier layout published and the current one does not: deleted from the remote on the next push
# (the adapter repo once carried the merged model under merged/, which no server could load).
RETIRED = {"model": ["merged/*"]}
PICKLES = ["*.bin", "*.pt", "*.pth", "*.pkl", "*.pickle", "*.ckpt", "*.npy"]
REACH_TIMEOUT_S = 3.0
# --tag auto: the version the folder was staged with (model_card.identity.staged_version).
AUTO_TAG = "auto"


class PushError(RuntimeError):
    """Publishing cannot go on; the message says what to do. Raised before any write to the Hub."""


def allow_list(folder: Path, kind: str) -> str:
    """The ALLOW key of a folder: a model folder holding a full model (config.json) and no adapter is a
    merged model's repo, published with its own allow-list and checks."""
    merged = (folder / "config.json").is_file() and not (folder / "adapter_config.json").exists()
    return "merged" if kind == "model" and merged else kind


def matches(path: str, pattern: str) -> bool:
    """fnmatch per path component, so `*.safetensors` matches top-level files only."""
    parts, pats = path.split("/"), pattern.split("/")
    return len(parts) == len(pats) and all(
        fnmatch.fnmatchcase(a, p) for a, p in zip(parts, pats, strict=True)
    )


@dataclass(frozen=True)
class LocalFile:
    path: str  # path in the repo (posix)
    local: Path
    size: int
    sha256: str
    git_sha1: str  # git blob id: what the Hub reports for non-LFS files


def hash_file(local: Path, path: str) -> LocalFile:
    # O_NOFOLLOW: a file swapped for a link after the folder was checked is refused, not followed.
    fd = os.open(local, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    size = os.fstat(fd).st_size
    sha256, git = hashlib.sha256(), hashlib.sha1(f"blob {size}\0".encode())
    with os.fdopen(fd, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            sha256.update(block)
            git.update(block)
    return LocalFile(path, local, size, sha256.hexdigest(), git.hexdigest())


def collect_files(folder: Path, kind: str) -> tuple[list[LocalFile], list[tuple[str, str]]]:
    """Allow-listed files of the folder, and (path, reason) of those excluded.
    A symbolic link or special file anywhere in the folder is a PushError: links are never followed."""
    kind = allow_list(folder, kind)
    candidates = folder_files(folder)
    files, excluded = [], []
    for path, local in sorted(candidates.items()):
        parts = path.split("/")
        if any(part == "checkpoints" or part.startswith("checkpoint-") for part in parts):
            excluded.append((path, "refused: training checkpoint"))
        elif any(fnmatch.fnmatchcase(parts[-1], p) for p in PICKLES) or parts[-1] == "training_args.bin":
            excluded.append((path, "refused: pickle (arbitrary code on load)"))
        elif any(matches(path, p) for p in ALLOW[kind]):
            files.append(hash_file(local, path))
        else:
            excluded.append((path, "not on the allow-list"))
    return files, excluded


RESTAGE = "re-stage the folder with `python -m model_card.stage`"
REBUILD = "rebuild the folder with `python -m dataset_builder build`"


def _refusing(fn: Callable) -> Callable:
    """Turn the UnsafeError of model_card.safety (a link, an unreadable file) into a PushError."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except UnsafeError as err:
            raise PushError(str(err)) from None

    return wrapper


folder_files = _refusing(regular_files)
_json = _refusing(read_json_object)
_front_matter = _refusing(read_front_matter)


@_refusing
def check_local_paths(folder: Path, kind: str) -> None:
    """PushError when a published metadata file names an absolute path of this machine."""
    leaks = sorted(local_path_leaks(regular_files(folder)), key=lambda x: not x.startswith(LOCAL_BASE))
    if leaks and leaks[0].startswith(LOCAL_BASE):
        raise PushError(
            f"{folder}/{leaks[0]}: the base model is a local path, users could not load the adapter; "
            "re-stage the folder with `python -m model_card.stage ... --base-model-id ORG/NAME`"
        )
    if leaks:
        more = f" (and {len(leaks) - 1} more)" if len(leaks) > 1 else ""
        raise PushError(
            f"{folder} holds a local path, {leaks[0]}{more}; published files must not name paths of this "
            f"machine: {RESTAGE if kind == 'model' else REBUILD}, which writes Hub ids or relative paths"
        )


def check_folder(folder: Path, kind: str) -> list[str]:
    """Everything that makes the folder unpublishable, before any network call (empty = fine).
    A file that cannot be read as what it should be (not JSON, not an object) is a PushError."""
    if not folder.is_dir():
        return [f"{folder} is not a folder"]
    if kind == "dataset":
        return _check_dataset(folder)
    if allow_list(folder, kind) == "merged":
        return _check_merged(folder)
    problems = [f"missing {name}" for name in ("README.md", "adapter_config.json", "eval_results.json")]
    problems = [p for p in problems if not (folder / p.removeprefix("missing ")).is_file()]
    if not any(folder.glob("*.safetensors")):
        problems.append("missing adapter weights (*.safetensors)")
    if problems:
        return [f"{folder}: {p} (stage it with `python -m model_card.stage`)" for p in problems]
    base = _json(folder / "adapter_config.json", RESTAGE).get("base_model_name_or_path")
    if not isinstance(base, str) or not base:
        raise PushError(
            f"{folder}/adapter_config.json has no base_model_name_or_path: users could not load the adapter; "
            "re-stage the folder with `python -m model_card.stage ... --base-model-id ORG/NAME`"
        )
    if not is_hub_id(base):
        problems.append(
            f"adapter_config.json base_model_name_or_path is {base!r}, not a Hub id: "
            "users could not load the "
            "adapter. Re-stage with --base-model-id ORG/NAME"
        )
    eval_results = _json(folder / "eval_results.json", RESTAGE)
    shape = eval_results_shape(eval_results)
    if shape:
        raise PushError(f"{folder}/eval_results.json: {shape} (docs/ARCHITECTURE.md §4): {RESTAGE}")
    text, meta = _front_matter(folder / "README.md", RESTAGE)
    if meta is None and text.startswith("---"):
        return [*problems, f"README.md front matter is not a YAML mapping: {RESTAGE}"]
    problems += check_card_metadata(text, eval_results)
    return problems


def _check_merged(folder: Path) -> list[str]:
    """A merged model's repo: the weights a server loads from the root, and a card that says it is a merge
    with the adapter's numbers (model_card/merged.py)."""
    fix = "re-stage it with `python -m model_card.stage ... --merged`"
    problems = [f"missing {n}" for n in ("README.md", "eval_results.json") if not (folder / n).is_file()]
    if not any(folder.glob("*.safetensors")):
        problems.append("missing model weights (*.safetensors)")
    if problems:
        return [f"{folder}: {p} ({fix})" for p in problems]
    eval_results = _json(folder / "eval_results.json", fix)
    text, meta = _front_matter(folder / "README.md", fix)
    if meta is None and text.startswith("---"):
        return [f"README.md front matter is not a YAML mapping: {fix}"]
    problems = check_card_metadata(text, eval_results)
    expected = {"base_model_relation": "merge", "library_name": "transformers"}
    for key, value in expected.items():
        if (meta or {}).get(key) and (meta or {}).get(key) != value:
            problems.append(f"card metadata `{key}` is {(meta or {}).get(key)!r}, not {value!r}: {fix}")
    return problems


def _check_dataset(folder: Path) -> list[str]:
    problems = []
    readme, manifest_path = folder / "README.md", folder / "manifest.json"
    if not readme.is_file():
        problems.append("missing README.md (dataset card with YAML `configs:`)")
    elif not (_front_matter(readme, REBUILD)[1] or {}).get("configs"):
        problems.append("README.md has no YAML `configs:`: load_dataset would not find the splits")
    if not manifest_path.is_file():
        return [*problems, "missing manifest.json"]
    shards = _json(manifest_path, REBUILD).get("shards") or {}
    if not isinstance(shards, dict) or not all(isinstance(v, str) for v in shards.values()):
        raise PushError(f"{manifest_path}: `shards` must map file paths to sha256 strings: {REBUILD}")
    present = {
        p.relative_to(folder).as_posix()
        for pattern in ("data/*.parquet", "infilling/*.parquet", "api_usage/*.parquet", "execution/*.parquet")
        for p in folder.glob(pattern)
    }
    problems += [f"{p} is not listed in manifest.json shards" for p in sorted(present - set(shards))]
    for path, expected in sorted(shards.items()):
        if path not in present:
            problems.append(f"shard {path} listed in manifest.json is missing")
        elif hash_file(folder / path, path).sha256 != expected:
            problems.append(f"shard {path}: sha256 differs from manifest.json (rebuild the dataset folder)")
    return [f"{folder}: {p}" for p in problems]


@dataclass
class Plan:
    repo_id: str
    repo_type: str
    files: list[LocalFile]
    excluded: list[tuple[str, str]]
    allow: str = ""  # the ALLOW key deletions are limited to (default: repo_type)
    uploads: list[LocalFile] = field(default_factory=list)
    unchanged: list[LocalFile] = field(default_factory=list)
    deletions: list[str] = field(default_factory=list)

    def operations(self) -> list[CommitOperationAdd | CommitOperationDelete]:
        adds = [CommitOperationAdd(path_in_repo=f.path, path_or_fileobj=str(f.local)) for f in self.uploads]
        return [*adds, *(CommitOperationDelete(path_in_repo=p) for p in self.deletions)]


def diff_remote(plan: Plan, remote: list[Any]) -> Plan:
    """Split the plan's files into uploads/unchanged and find deletions, from `list_repo_tree` entries."""
    remote_files = {r.path: r for r in remote if hasattr(r, "blob_id")}  # RepoFolder has no blob_id
    local = {f.path for f in plan.files}
    for f in plan.files:
        r = remote_files.get(f.path)
        same = r is not None and (r.lfs.sha256 == f.sha256 if r.lfs else r.blob_id == f.git_sha1)
        (plan.unchanged if same else plan.uploads).append(f)
    allow = plan.allow or plan.repo_type
    patterns = ALLOW[allow] + RETIRED.get(allow, [])
    plan.deletions = sorted(
        p for p in remote_files if p not in local and any(matches(p, pat) for pat in patterns)
    )
    return plan


def format_plan(plan: Plan, remote_known: bool) -> str:
    lines = [f"{plan.repo_type} repo {plan.repo_id}: {len(plan.files)} allow-listed files"]
    if remote_known:
        lines += [f"  upload   {f.path}  ({f.size:,} bytes)" for f in plan.uploads]
        lines += [f"  same     {f.path}  ({f.size:,} bytes, already on the Hub)" for f in plan.unchanged]
        lines += [f"  delete   {p}  (no longer in the folder)" for p in plan.deletions]
    else:
        lines += [f"  upload   {f.path}  ({f.size:,} bytes)" for f in plan.files]
    lines += [f"  exclude  {p}  ({why})" for p, why in plan.excluded]
    total = sum(f.size for f in (plan.uploads if remote_known else plan.files))
    lines.append(f"  total to upload: {total:,} bytes")
    return "\n".join(lines)


def check_online(endpoint: str = constants.ENDPOINT, timeout: float = REACH_TIMEOUT_S) -> None:
    """Fail in seconds (not after ~23 s of upload retries) when the Hub is unreachable or offline."""
    offline_env = os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}
    if constants.HF_HUB_OFFLINE or offline_env:
        raise PushError(
            "HF_HUB_OFFLINE=1 is set: unset it (or set HF_HUB_OFFLINE=0) to publish; --dry-run works offline"
        )
    try:
        get_session().head(endpoint, timeout=timeout)  # the Hub session honours HTTPS_PROXY
    except (httpx2.HTTPError, OSError) as err:  # OfflineModeIsEnabled is an OSError
        raise PushError(
            f"cannot reach {endpoint} within {timeout:.0f} s ({type(err).__name__}): check the network or "
            "HTTPS_PROXY; --dry-run works offline"
        ) from None


def resolve_token(token_getter: Callable[[], str | None] = get_token) -> str:
    token = token_getter()
    if not token:
        raise PushError(
            "no Hugging Face token: run `huggingface-cli login` (or `hf auth login`) or set HF_TOKEN"
        )
    return token


@dataclass
class PushResult:
    url: str | None  # None for a dry run
    commit: str | None  # None: no commit was made (nothing changed, or a dry run)
    head: str | None
    tag: str | None
    pr_url: str | None = None
    problems: list[str] = field(default_factory=list)  # dry run: why the folder is not publishable


def publish(
    folder: Path,
    repo_id: str,
    kind: str,
    *,
    api: HfApi | None = None,
    tag: str | None = None,
    private: bool = False,
    create_pr: bool = False,
    dry_run: bool = False,
    echo: Callable[[str], None] = print,
    online_check: Callable[[], None] | None = None,
    token_getter: Callable[[], str | None] = get_token,
) -> PushResult:
    """Check, plan and (unless dry_run) publish `folder` to `repo_id` in one commit; see the module doc.

    `tag="auto"` tags the version the folder records: a dataset `v<manifest version>`, a model its
    version.json (model_card/identity.py), so a retrained model never reuses its corpus' tag.
    A merged model's folder (`model_card.stage --merged`) is a model folder too, with its own allow-list."""
    if kind not in ALLOW:
        raise PushError(f"unknown repo kind {kind!r}: use 'model' or 'dataset'")
    _refusing(check_repo_id)(repo_id)
    if tag and create_pr:
        raise PushError(
            "--tag with --create-pr would tag an unmerged PR commit: merge the PR, then push --tag"
        )
    if not folder.is_dir():
        raise PushError(f"--folder {folder} is not a folder: pass the staged model or dataset folder")
    if tag == AUTO_TAG:
        tag = staged_version(folder, kind)
        if not tag:
            where, fix = (VERSION_FILE, RESTAGE) if kind == "model" else ("manifest.json", REBUILD)
            raise PushError(f"--tag {AUTO_TAG}: {folder} records no version in {where}: {fix}")
    check_local_paths(folder, kind)  # links, special files and local paths: refused in a dry run too
    problems = check_folder(folder, kind)
    # A card that loads another repo is refused, --dry-run included: users would copy the wrong id.
    wrong_repo = staged_for_problem(folder, kind, repo_id)
    if wrong_repo:
        raise PushError(wrong_repo)
    if dry_run:
        plan = Plan(repo_id, kind, *collect_files(folder, kind), allow=allow_list(folder, kind))
        echo(format_plan(plan, remote_known=False))
        echo(
            f"  would: create_repo(exist_ok=True{', private' if private else ''}), one create_commit"
            f"{' as a PR' if create_pr else ''} of the changed files{f', create_tag({tag})' if tag else ''}"
        )
        echo("card/folder checks: " + ("OK" if not problems else "FAILED\n  - " + "\n  - ".join(problems)))
        return PushResult(url=None, commit=None, head=None, tag=tag, problems=problems)
    if problems:
        raise PushError("not publishing, the folder is incomplete:\n  - " + "\n  - ".join(problems))
    token = resolve_token(token_getter)
    (online_check or check_online)()  # looked up at call time: tests may replace it
    api = api or HfApi(token=token)
    plan = Plan(repo_id, kind, *collect_files(folder, kind), allow=allow_list(folder, kind))
    try:
        return _execute(api, plan, tag=tag, private=private, create_pr=create_pr, echo=echo)
    except HfHubHTTPError as err:  # before its base classes below
        raise PushError(f"the Hub refused the request: {err}") from None
    except (httpx2.HTTPError, OSError) as err:
        raise PushError(
            f"the connection to the Hub failed ({type(err).__name__}: {err}); "
            "the commit is atomic, so the repo holds the previous or the new version: run the push again"
        ) from None


def _execute(
    api: Any, plan: Plan, *, tag: str | None, private: bool, create_pr: bool, echo: Callable
) -> PushResult:
    repo_url = api.create_repo(plan.repo_id, repo_type=plan.repo_type, private=private, exist_ok=True)
    diff_remote(plan, list(api.list_repo_tree(plan.repo_id, repo_type=plan.repo_type, recursive=True)))
    echo(format_plan(plan, remote_known=True))
    refs = api.list_repo_refs(plan.repo_id, repo_type=plan.repo_type)
    head = next((b.target_commit for b in refs.branches if b.name == "main"), None)
    changed = bool(plan.uploads or plan.deletions)
    tagged = next((t.target_commit for t in refs.tags if t.name == tag), None) if tag else None
    # Checked before the commit: a tag that exists elsewhere must fail with nothing published.
    if tagged and (changed or tagged != head):
        raise PushError(f"tag {tag} already exists at {tagged} (main is at {head}); pick a new version tag")
    commit, pr_url = None, None
    if changed:
        info = api.create_commit(
            plan.repo_id,
            operations=plan.operations(),
            commit_message=f"Publish {len(plan.uploads)} files, delete {len(plan.deletions)}"
            + (f" ({tag})" if tag else ""),
            repo_type=plan.repo_type,
            create_pr=create_pr,
        )
        commit, pr_url = info.oid, getattr(info, "pr_url", None)
        head = head if create_pr else commit
        echo(f"commit {commit}" + (f" (pull request {pr_url})" if pr_url else ""))
    else:
        echo(f"nothing changed: no commit (main is at {head})")
    if tag and not tagged:
        api.create_tag(plan.repo_id, tag=tag, revision=head, repo_type=plan.repo_type)
        echo(f"tag {tag} -> {head}")
    url = str(repo_url)
    echo(f"url {url}" + (f"/tree/{tag}" if tag else ""))
    return PushResult(url=url, commit=commit, head=head, tag=tag, pr_url=pr_url)
