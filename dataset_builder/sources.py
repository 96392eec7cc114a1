"""Where each repo's git objects come from, and making sure the pinned commit is there.

Default: a bare, blob-less partial clone of the repo URL in a cache dir (`<cache>/repos/<name>.git`),
fetched incrementally when the pinned commit is missing. Blobs are fetched later in ONE batch for the
files that pass the path filters (see `fetch_blobs`), so dropped vendored/asset files are never
downloaded. `--mirrors DIR` uses DIR/<name> or DIR/<name>.git (bare or not); `--source NAME=PATH_OR_URL`
overrides one repo. Failures raise SourceError naming the repo and the fix, within seconds.

Hardening: URLs and refs come from the config or the command line, so every git call here runs through
flyte_llama_common.git with them after `--` (`targets=`) and the `ext::` transport disabled, and `--source`
values are checked (url_problem) before anything is cloned. Messages never show a URL's `user:password@`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from flyte_llama_common.atomic import staged_dir
from flyte_llama_common.git import NETWORK_TIMEOUT_S, GitError, git, is_url, mask_credentials, url_problem

from .config import CorpusConfig, RepoSpec
from .gitread import missing_objects


class SourceError(RuntimeError):
    """A repo could not be found, reached or resolved; the message says which and what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(mask_credentials(message))


@dataclass(frozen=True)
class Source:
    name: str
    git_dir: Path  # the git dir to read objects from (a bare repo or a work tree's .git)
    origin: str  # where it came from, for messages and the summary
    partial: bool  # a promisor (partial) clone: blobs may need fetching


def check_overrides(overrides: dict[str, str]) -> None:
    """Refuse `--source NAME=VALUE` values that git could misread (options, `ext::`), before any work."""
    for name, value in overrides.items():
        if problem := url_problem(value):
            raise SourceError(
                f"--source {name}={value} {problem}. Fix: pass a URL (https://..., ssh://..., file://..., "
                f"git@host:path) or the path of a local clone"
            )


def _git_dir_of(path: Path) -> Path | None:
    """The git dir of a bare repo or a work tree at `path`, or None when it is not a git repo."""
    if (path / ".git").exists():
        path = path / ".git"
    if (path / "objects").is_dir() and (path / "HEAD").exists():
        return path
    return None


def _network_git(
    git_dir: Path | None, args: Sequence[str], targets: Sequence[str], repo: str, what: str
) -> str:
    """A git call that may reach a remote (see flyte_llama_common.git), failing with a SourceError that
    says what to do."""
    try:
        return git(git_dir, *args, targets=targets, network=True)
    except GitError as err:
        if err.timed_out:
            raise SourceError(
                f"{repo}: {what} timed out after {NETWORK_TIMEOUT_S:.0f}s. Check the network, or build from "
                f"local clones with --mirrors DIR or --source {repo}=PATH."
            ) from None
        raise SourceError(
            f"{repo}: {what} failed: {err.stderr}. "
            f"Fix: check the URL in the config, or build from local clones with --mirrors DIR "
            f"or --source {repo}=PATH."
        ) from None


def has_commit(git_dir: Path, sha: str) -> bool:
    try:
        return git(git_dir, "cat-file", "-t", sha).strip() == "commit"
    except GitError:
        return False


def promisor_remote(git_dir: Path) -> str | None:
    """The remote a partial clone fetches missing objects from, or None for a complete repo."""
    try:
        out = git(git_dir, "config", "--get-regexp", r"^remote\..*\.promisor$")
    except GitError:  # no such key: not a partial clone
        out = ""
    for line in out.splitlines():
        key, _, value = line.partition(" ")
        if value.strip() == "true":
            return key[len("remote.") : -len(".promisor")]
    try:
        return git(git_dir, "config", "--get", "extensions.partialclone").strip() or None
    except GitError:
        return None


def is_partial(git_dir: Path) -> bool:
    return promisor_remote(git_dir) is not None


def clone_or_update(spec: RepoSpec, url: str, cache_dir: Path) -> Path:
    """Bare blob-less clone of `url` into the cache (atomically), fetching again if the pin is missing."""
    target = cache_dir / "repos" / f"{spec.name}.git"
    if not is_url(url):  # absolute, so that git can never read a local path as `transport::address`
        url = str(Path(url).expanduser().resolve())
    if not target.exists():
        with staged_dir(target) as tmp:  # a half-finished clone never sits at the cache path
            clone = ["clone", "--bare", "--filter=blob:none", "--quiet"]
            _network_git(None, clone, [url, str(tmp)], spec.name, f"clone {url}")
    if has_commit(target, spec.commit):
        return target
    # Fetch through the promisor remote "origin" so the blob:none filter applies to new history too.
    git(target, "config", targets=["remote.origin.url", url])
    fetch = ["fetch", "--quiet", "--no-tags"]
    _network_git(target, fetch, ["origin", spec.ref], spec.name, f"fetch {spec.ref} from {url}")
    if not has_commit(target, spec.commit):
        # The pin may no longer be on the ref (force-push, or an older pin): ask for the SHA itself.
        with contextlib.suppress(SourceError):  # resolve_source reports the missing pin with the fix
            what = f"fetch {spec.commit} from {url}"
            _network_git(target, fetch, ["origin", spec.commit], spec.name, what)
    return target


def resolve_source(
    spec: RepoSpec, cache_dir: Path, mirrors: Path | None = None, override: str | None = None
) -> Source:
    """Find or clone the repo for `spec` and check that the pinned commit is in it."""
    if override is not None and not is_url(override):
        path = Path(override).expanduser()
        git_dir = _git_dir_of(path)
        if git_dir is None:
            raise SourceError(f"{spec.name}: --source {spec.name}={override} is not a git repository")
        source = Source(spec.name, git_dir, str(path), is_partial(git_dir))
    elif override is None and mirrors is not None:
        candidates = [mirrors / spec.name, mirrors / f"{spec.name}.git"]
        git_dir = next((d for c in candidates if (d := _git_dir_of(c)) is not None), None)
        if git_dir is None:
            raise SourceError(
                f"{spec.name}: no git repo at {candidates[0]} or {candidates[1]}. Fix: "
                f"`git clone --bare {spec.url} {candidates[1]}`, or pass --source {spec.name}=PATH_OR_URL."
            )
        source = Source(spec.name, git_dir, str(git_dir), is_partial(git_dir))
    else:
        url = override or spec.url
        git_dir = clone_or_update(spec, url, cache_dir)
        # A server without filter support (a local repo lacking uploadpack.allowFilter) sends a full clone.
        source = Source(spec.name, git_dir, url, is_partial(git_dir))
    if not has_commit(source.git_dir, spec.commit):
        raise SourceError(
            f"{spec.name}: pinned commit {spec.commit} is not in {source.origin}. Fix: fetch it there "
            f"(`git -C {source.git_dir} fetch -- origin {spec.ref}`), or run `python -m dataset_builder pin "
            f"--write` to pin what {spec.ref!r} points to now (and bump the corpus version)."
        )
    return source


def resolve_sources(
    cfg: CorpusConfig, cache_dir: Path, mirrors: Path | None = None, overrides: dict[str, str] | None = None
) -> dict[str, Source]:
    """All sources of the config, failing on the first unusable one (before anything is read)."""
    overrides = overrides or {}
    unknown = sorted(set(overrides) - {r.name for r in cfg.repos})
    if unknown:
        raise SourceError(f"--source names unknown repo(s) {unknown}; known: {[r.name for r in cfg.repos]}")
    check_overrides(overrides)
    return {r.name: resolve_source(r, cache_dir, mirrors, overrides.get(r.name)) for r in cfg.repos}


def fetch_blobs(source: Source, commit: str, wanted: set[str]) -> int:
    """Download the `wanted` blobs a partial clone lacks in ONE fetch; returns how many were fetched.

    Without this, `git cat-file --batch` would fetch each missing blob lazily, one round trip per file.
    The command is the one git itself uses for lazy fetches (`fetch --stdin` of object ids).
    """
    if not source.partial:
        return 0
    missing = [sha for sha in missing_objects(source.git_dir, commit) if sha in wanted]
    if not missing:
        return 0
    remote = promisor_remote(source.git_dir) or "origin"
    fetch = ["fetch", "--no-tags", "--no-write-fetch-head", "--recurse-submodules=no", "--filter=blob:none"]
    try:
        git(
            source.git_dir,
            *fetch,
            "--stdin",
            "--quiet",
            targets=[remote],
            options=["-c", "fetch.negotiationAlgorithm=noop"],
            network=True,
            timeout=600,
            input="\n".join(missing) + "\n",
        )
    except GitError as err:
        raise SourceError(
            f"{source.name}: fetching {len(missing)} blobs from {remote} failed: {err.stderr or err}. "
            f"Check the network, or use --mirrors / --source {source.name}=PATH with a full clone."
        ) from None
    return len(missing)
