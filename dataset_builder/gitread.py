"""Read the files of one commit straight from git objects (no working tree, no checkout).

`git ls-tree -r -z -l <sha>` lists every entry with its mode and size; one `git cat-file --batch`
process then streams the contents of the blobs we want. One process per repo keeps the per-file cost
at a pipe read instead of a fork (GitPython's `data_stream` is about half as fast, see FACTS.md).

Every git call here goes through flyte_llama_common.git (the one hardened wrapper: no `ext::` transport
even where a user's config allows it, since reads from a partial clone can fetch from its remote; errors
with credentials masked). `git`, `GitError` and `mask_credentials` are re-exported from there.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from flyte_llama_common.git import GitError, git, git_bytes, git_command, mask_credentials, one_line

__all__ = [
    "MODE_SUBMODULE",
    "MODE_SYMLINK",
    "GitError",
    "TreeEntry",
    "git",
    "list_tree",
    "mask_credentials",
    "missing_objects",
    "read_blobs",
]

MODE_SYMLINK = "120000"
MODE_SUBMODULE = "160000"


@dataclass(frozen=True)
class TreeEntry:
    """One entry of `git ls-tree -r`: a blob, a symlink or a submodule (gitlink)."""

    path: str
    mode: str
    object_type: str  # "blob" or "commit" (submodule)
    sha: str


def list_tree(git_dir: Path, commit: str) -> list[TreeEntry]:
    """All entries of `commit`'s tree, recursively, in git's (byte) order.

    No `-l`: in a blob-less partial clone asking for sizes would fetch every blob one by one.
    """
    try:
        out = git_bytes(git_dir, "ls-tree", "-r", "-z", "--full-tree", commit)
    except GitError as err:
        raise GitError(f"git ls-tree {commit} failed in {git_dir}: {err.stderr}", stderr=err.stderr) from None
    entries = []
    for item in out.split(b"\0"):
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
