"""`pin`: resolve each repo's ref again and (with --write) put the new SHAs into the YAML recipe.

Remote URLs are resolved with `git ls-remote` (no clone needed); local repos (--mirrors, --source PATH)
with `git rev-parse`. What a ref resolves to must be a commit (a tag can name a blob or a tree): remote
pins are checked by fetching just that commit into a throw-away repo, local ones with `^{commit}`.
The YAML is edited line by line, only the `commit:` value of each repo, so comments and layout
survive; the result is loaded again and checked before it replaces the file.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from flyte_llama_common.atomic import atomic_path
from flyte_llama_common.git import GitError, git, is_url

from .config import CorpusConfig, RepoSpec, load_config
from .sources import SourceError, _git_dir_of, check_overrides


def _not_a_commit(repo: str, ref: str, kind: str, where: str) -> SourceError:
    return SourceError(
        f"{repo}: ref {ref!r} in {where} points to a {kind}, not a commit; set `ref:` to a branch or a "
        f"tag that names a commit"
    )


def _check_remote_commit(url: str, refname: str, sha: str, ref: str, repo: str) -> None:
    """Fetch only `refname` (depth 1, no trees or blobs) into a temp repo and check `sha` is a commit."""
    with tempfile.TemporaryDirectory(prefix="flyte-llama-pin-") as tmp:
        fetch = ["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--depth=1", "--filter=tree:0"]
        initialised = False
        try:
            git(tmp, "init", "--bare", "--quiet")
            initialised = True  # from here on a failure is the fetch's
            git(tmp, *fetch, targets=[url, f"+{refname}:refs/pin/check"], network=True)
        except GitError as err:
            if initialised and not err.timed_out:  # git answered: the ref or the server refused
                raise SourceError(f"{repo}: fetching {refname} from {url} failed: {err.stderr}") from None
            what = f"{repo}: checking {refname} at {url} failed ({err})"
            raise SourceError(f"{what}; check the network or use --mirrors DIR") from None
        try:
            kind = git(tmp, "cat-file", "-t", sha).strip()
        except GitError:
            kind = ""
        if kind != "commit":
            raise _not_a_commit(repo, ref, kind or "missing object", url)


def _ls_remote(url: str, ref: str, repo: str) -> str:
    try:
        out = git(None, "ls-remote", targets=[url, ref, f"{ref}^{{}}"], network=True)
    except GitError as err:
        if err.timed_out:
            raise SourceError(
                f"{repo}: `git ls-remote {url}` timed out; check the network or use --mirrors"
            ) from None
        raise SourceError(
            f"{repo}: cannot reach {url}: {err.stderr}. Check the URL or use --mirrors DIR"
        ) from None
    refs = dict(reversed(line.split("\t", 1)) for line in out.splitlines() if "\t" in line)
    # Annotated tags: the peeled "^{}" entry is the commit; prefer exact branch/tag names over suffixes.
    for name in (f"refs/tags/{ref}^{{}}", f"refs/tags/{ref}", f"refs/heads/{ref}", ref):
        if name in refs:
            _check_remote_commit(url, name.removesuffix("^{}"), refs[name], ref, repo)
            return refs[name]
    raise SourceError(
        f"{repo}: ref {ref!r} not found at {url}; fix `ref:` in the config (a branch or tag name)"
    )


def _rev_parse(git_dir: Path, ref: str, repo: str) -> str:
    # `ref` passed config validation (gitread.ref_problem): it cannot start with '-', so no option.
    for name in (f"refs/tags/{ref}", f"refs/heads/{ref}", f"refs/remotes/origin/{ref}", ref):
        try:
            git(git_dir, "rev-parse", "--verify", "--quiet", name)
        except GitError:
            continue
        try:
            return git(git_dir, "rev-parse", "--verify", "--quiet", f"{name}^{{commit}}").strip()
        except GitError:
            kind = git(git_dir, "cat-file", "-t", f"{name}^{{}}").strip()
            raise _not_a_commit(repo, ref, kind, str(git_dir)) from None
    raise SourceError(
        f"{repo}: ref {ref!r} not found in {git_dir}; fetch it there "
        f"(`git -C {git_dir} fetch -- origin {ref}`) or fix `ref:` in the config"
    )


def resolve_ref(spec: RepoSpec, mirrors: Path | None = None, override: str | None = None) -> str:
    """The commit SHA `spec.ref` points to now, in the mirror / override / URL the build would use."""
    location = override
    if location is None and mirrors is not None:
        location = next(
            (str(c) for c in (mirrors / spec.name, mirrors / f"{spec.name}.git") if c.exists()), None
        )
        if location is None:
            raise SourceError(
                f"{spec.name}: no git repo at {mirrors / spec.name} or {mirrors / spec.name}.git"
            )
    location = location or spec.url
    if is_url(location):
        return _ls_remote(location, spec.ref, spec.name)
    git_dir = _git_dir_of(Path(location).expanduser())
    if git_dir is None:
        raise SourceError(f"{spec.name}: {location} is not a git repository")
    return _rev_parse(git_dir, spec.ref, spec.name)


def resolve_pins(
    cfg: CorpusConfig, mirrors: Path | None = None, overrides: dict[str, str] | None = None
) -> dict[str, str]:
    """{repo name: new SHA} for every repo of the config."""
    overrides = overrides or {}
    check_overrides(overrides)
    return {r.name: resolve_ref(r, mirrors, overrides.get(r.name)) for r in cfg.repos}


def rewrite_commits(text: str, pins: dict[str, str]) -> str:
    """Replace each repo's `commit:` value in the YAML text, keeping every other line as it is."""
    lines = text.splitlines(keepends=True)
    current = None
    done: set[str] = set()
    name_re = re.compile(r"^\s*(?:-\s+)?name:\s*['\"]?([^'\"#\s]+)")
    commit_re = re.compile(r"^(\s*commit:\s*)['\"]?[^'\"#\s]*['\"]?(.*)$", re.DOTALL)
    for i, line in enumerate(lines):
        if m := name_re.match(line):
            current = m.group(1)
        elif current in pins and (m := commit_re.match(line)):
            lines[i] = f"{m.group(1)}{pins[current]}{m.group(2)}"
            done.add(current)
    missing = sorted(set(pins) - done)
    if missing:
        raise SourceError(f"could not find a `commit:` line for {missing} in the config; edit it by hand")
    return "".join(lines)


def write_pins(path: Path, pins: dict[str, str]) -> CorpusConfig:
    """Write `pins` into the YAML at `path` atomically; returns the re-loaded, validated config."""
    new_text = rewrite_commits(path.read_text(), pins)
    with atomic_path(path) as tmp:  # checked before it replaces the recipe: a failure keeps the old one
        tmp.write_text(new_text)
        cfg = load_config(tmp)
        wrong = {r.name for r in cfg.repos if r.name in pins and r.commit != pins[r.name]}
        if wrong:
            raise SourceError(f"rewriting {path} did not set the pins of {sorted(wrong)}; edit it by hand")
    return cfg
