"""Read the files of one commit straight from git objects (no working tree, no checkout).

`git ls-tree -r -z -l <sha>` lists every entry with its mode and size; one `git cat-file --batch`
process then streams the contents of the blobs we want. One process per repo keeps the per-file cost
at a pipe read instead of a fork (GitPython's `data_stream` is about half as fast, see FACTS.md).

Every git call here goes through `git_command`, which disables the `ext::` transport (it runs arbitrary
commands) even where a user's config allows it: reads from a partial clone can fetch from its remote.
Every error message passes through `mask_credentials`, so a `user:password@` in a URL is never printed.
"""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from flyte_llama_common.ids import is_sha

MODE_SYMLINK = "120000"
MODE_SUBMODULE = "160000"
# Options for every git process that may reach a remote: `ext::` URLs run shell commands.
SAFE_OPTIONS = ("-c", "protocol.ext.allow=never")
# The userinfo of a URL (`scheme://user:password@`): up to the last "@" before the host's first "/".
_USERINFO = re.compile(r"(?<=://)[^/\s@]*(?:@[^/\s@]*)*@")


def mask_credentials(text: str) -> str:
    """`text` with the `user:password@` of every URL in it replaced by `***@` (tokens are often the user)."""
    return _USERINFO.sub("***@", text)


def git_command(git_dir: Path | None, *args: str) -> list[str]:
    """The argv of a hardened git call (against `git_dir` when given)."""
    location = [f"--git-dir={git_dir}"] if git_dir is not None else []
    return ["git", *SAFE_OPTIONS, *location, *args]


URL_SCHEMES = ("https", "http", "ssh", "git", "file")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_SCP = re.compile(r"^[A-Za-z0-9._~+-]+@[A-Za-z0-9][A-Za-z0-9.-]*:(?!:)")  # user@host:path (scp-like)
URL_FORMS = "https://, http://, ssh://, git://, file:// or user@host:path"


def is_url(value: str) -> bool:
    """A remote URL (any `scheme://` or scp-like `user@host:path`) rather than a local path."""
    return bool(_SCHEME.match(value) or _SCP.match(value))


def url_problem(value: str) -> str | None:
    """Why git must not be given `value` as a repository URL, or None when it is safe to pass (after `--`).

    Accepted: the schemes of URL_SCHEMES, scp-like `user@host:path`, or an existing local path. Refused:
    anything git could read as an option, `transport::address` forms (`ext::` runs a command), and a
    host starting with '-' (ssh would read it as an option).
    """
    if not value:
        return "is empty"
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return "contains control characters"
    if value.startswith("-"):
        return "starts with '-', which git would read as an option"
    if m := _SCHEME.match(value):
        scheme = m.group(1).lower()
        if scheme not in URL_SCHEMES:
            return f"uses the scheme {scheme}://; only {URL_FORMS} are allowed"
        try:
            host = urlsplit(value).hostname or ""
        except ValueError as exc:
            return f"is not a valid URL ({exc})"
        return "has a host starting with '-'" if host.startswith("-") else None
    if _SCP.match(value):
        return None
    if "::" in value:
        return f"uses git's transport::address syntax (e.g. ext::, which runs a command); use {URL_FORMS}"
    if not Path(value).expanduser().exists():
        return f"is neither a URL ({URL_FORMS}) nor an existing local path"
    return None


def url_credentials(value: str) -> bool:
    """Whether the URL carries a secret: a password, or any user name over http(s) (tokens go there)."""
    if not _SCHEME.match(value):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    web = parts.scheme.lower() in ("http", "https")
    return parts.password is not None or (web and parts.username is not None)


def ref_problem(ref: str) -> str | None:
    """Why `ref` is not a branch/tag name (`git check-ref-format` rules) or a full SHA, or None."""
    if not ref:
        return "is empty"
    if is_sha(ref):
        return None
    if any(ord(c) < 32 or ord(c) == 127 for c in ref):
        return "contains control characters"
    if ref.startswith(("-", "+")):
        return f"starts with {ref[0]!r}, which git would read as an option or a forced refspec"
    try:  # git's own rules (no spaces, ~^:?*[\, '..', '@{', '.lock' ...); the ref cannot be an option here
        ok = subprocess.run(
            ["git", "check-ref-format", "--allow-onelevel", ref], capture_output=True, check=False
        )
    except OSError as exc:
        return f"cannot be checked: git is not available ({exc})"
    if ok.returncode != 0:
        return "is not a valid branch or tag name (see `git check-ref-format`)"
    return None


class GitError(RuntimeError):
    """A git command failed; the message names the repo and the command (credentials masked)."""

    def __init__(self, message: str) -> None:
        super().__init__(mask_credentials(message))


@dataclass(frozen=True)
class TreeEntry:
    """One entry of `git ls-tree -r`: a blob, a symlink or a submodule (gitlink)."""

    path: str
    mode: str
    object_type: str  # "blob" or "commit" (submodule)
    sha: str


def one_line(stderr: str) -> str:
    """git's (multi-line) stderr as one line, for one-line error messages."""
    return "; ".join(line.strip() for line in stderr.splitlines() if line.strip()).rstrip(".")


def git(git_dir: Path, *args: str, timeout: float | None = None, env: dict | None = None) -> str:
    """Run a git command against `git_dir` and return stdout; raise GitError with stderr on failure."""
    cmd = git_command(git_dir, *args)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired as exc:
        raise GitError(f"`{' '.join(cmd)}` timed out after {timeout:.0f}s") from exc
    if proc.returncode != 0:
        raise GitError(f"`{' '.join(cmd)}` failed: {one_line(proc.stderr)}")
    return proc.stdout


def list_tree(git_dir: Path, commit: str) -> list[TreeEntry]:
    """All entries of `commit`'s tree, recursively, in git's (byte) order.

    No `-l`: in a blob-less partial clone asking for sizes would fetch every blob one by one.
    """
    out = subprocess.run(
        git_command(git_dir, "ls-tree", "-r", "-z", "--full-tree", commit),
        capture_output=True,
        check=False,
    )
    if out.returncode != 0:
        raise GitError(
            f"git ls-tree {commit} failed in {git_dir}: {one_line(out.stderr.decode(errors='replace'))}"
        )
    entries = []
    for item in out.stdout.split(b"\0"):
        if not item:
            continue
        meta, _, raw_path = item.partition(b"\t")
        mode, object_type, sha = meta.decode().split()
        path = raw_path.decode("utf-8", errors="surrogateescape")
        entries.append(TreeEntry(path, mode, object_type, sha))
    return entries


def read_blobs(
    git_dir: Path,
    shas: Iterable[str],
    *,
    paths: Mapping[str, str] | None = None,
    repo: str | None = None,
) -> Iterator[tuple[str, bytes | None]]:
    """Stream (sha, content) for each blob sha, in order, through ONE `git cat-file --batch` process.

    content is None when the object is absent from the repository (some mirrors omit large blobs).
    A short read (a truncated or corrupt object), an object git reports as missing while complaining
    about it on stderr (a corrupt header) and a failing exit status all raise GitError naming the
    object, its path (from `paths`, sha → path) and `repo`: a corrupt object must never read as an
    empty file. The exit status is checked once the last object has been consumed, so a consumer that
    only caches after the whole stream (process_repo) never caches a failed read.

    All requests are written by a feeder thread while we read, so the pipe never deadlocks and git never
    waits for us between objects; stderr is drained by another thread for the same reason.
    """
    shas = list(shas)
    paths = paths or {}
    where = f"{repo}: " if repo else ""
    proc = subprocess.Popen(
        git_command(git_dir, "cat-file", "--batch"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=1 << 20,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    errors: list[bytes] = []

    def feed() -> None:
        try:
            proc.stdin.write("".join(f"{sha}\n" for sha in shas).encode())
            proc.stdin.close()
        except BrokenPipeError:  # git died; the reader reports it
            pass

    def drain() -> None:
        errors.append(proc.stderr.read())

    def fail(sha: str, problem: str) -> GitError:
        try:  # git exits right after a short read; its reason is on stderr
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        drainer.join()
        reason = one_line(b"".join(errors).decode(errors="replace")) or "git gave no reason"
        path = f" ({paths[sha]})" if sha in paths else ""
        return GitError(
            f"{where}git object {sha}{path} in {git_dir} {problem}: {reason}. Fix: repair that "
            f"repository (`git -C {git_dir} fsck`, then fetch or clone it again) and build again."
        )

    feeder = threading.Thread(target=feed, daemon=True)
    drainer = threading.Thread(target=drain, daemon=True)
    feeder.start()
    drainer.start()
    missing: list[str] = []
    try:
        for sha in shas:
            header = proc.stdout.readline()
            parts = header.split()
            if len(parts) == 2 and parts[1] == b"missing":
                missing.append(sha)
                yield sha, None
                continue
            if len(parts) != 3 or not parts[2].isdigit():
                raise fail(sha, f"could not be read (git answered {header!r})")
            size = int(parts[2])
            data = proc.stdout.read(size)
            if len(data) != size or proc.stdout.read(1) != b"\n":
                raise fail(sha, f"is truncated or corrupt (read {len(data)} of {size} bytes)")
            yield sha, data
        if proc.wait() != 0:
            last = shas[-1] if shas else "(none requested)"
            raise fail(last, f"could not be read (git exited with status {proc.returncode})")
        drainer.join()
        complaints = b"".join(errors).decode(errors="replace")
        for sha in missing:  # a corrupt header reads as "missing", with the reason on stderr
            if sha in complaints:
                raise fail(sha, "is corrupt (git reports it missing)")
    finally:
        if proc.poll() is None:  # the consumer stopped early: stop git before joining the threads
            proc.kill()
        proc.wait()
        feeder.join()
        drainer.join()
        proc.stdout.close()
        proc.stderr.close()


def missing_objects(git_dir: Path, commit: str) -> list[str]:
    """Objects of `commit`'s tree that a partial clone has not downloaded yet (no lazy fetch)."""
    out = git(git_dir, "rev-list", "--objects", "--no-walk", "--missing=print", commit)
    return [line[1:] for line in out.splitlines() if line.startswith("?")]
