"""Read the files of one commit straight from git objects (no working tree, no checkout).

`git ls-tree -r -z -l <sha>` lists every entry with its mode and size; one `git cat-file --batch`
process then streams the contents of the blobs we want. One process per repo keeps the per-file cost
at a pipe read instead of a fork (GitPython's `data_stream` is about half as fast, see FACTS.md).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

MODE_SYMLINK = "120000"
MODE_SUBMODULE = "160000"


class GitError(RuntimeError):
    """A git command failed; the message names the repo and the command."""


@dataclass(frozen=True)
class TreeEntry:
    """One entry of `git ls-tree -r`: a blob, a symlink or a submodule (gitlink)."""

    path: str
    mode: str
    object_type: str  # "blob" or "commit" (submodule)
    sha: str


def git(git_dir: Path, *args: str, timeout: float | None = None, env: dict | None = None) -> str:
    """Run a git command against `git_dir` and return stdout; raise GitError with stderr on failure."""
    cmd = ["git", f"--git-dir={git_dir}", *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired as exc:
        raise GitError(f"`{' '.join(cmd)}` timed out after {timeout:.0f}s") from exc
    if proc.returncode != 0:
        raise GitError(f"`{' '.join(cmd)}` failed: {proc.stderr.strip()}")
    return proc.stdout


def list_tree(git_dir: Path, commit: str) -> list[TreeEntry]:
    """All entries of `commit`'s tree, recursively, in git's (byte) order.

    No `-l`: in a blob-less partial clone asking for sizes would fetch every blob one by one.
    """
    out = subprocess.run(
        ["git", f"--git-dir={git_dir}", "ls-tree", "-r", "-z", "--full-tree", commit],
        capture_output=True,
        check=False,
    )
    if out.returncode != 0:
        raise GitError(
            f"git ls-tree {commit} failed in {git_dir}: {out.stderr.decode(errors='replace').strip()}"
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


def read_blobs(git_dir: Path, shas: Iterable[str]) -> Iterator[tuple[str, bytes | None]]:
    """Stream (sha, content) for each blob sha, in order, through ONE `git cat-file --batch` process.

    content is None when the object is absent from the repository (some mirrors omit large blobs).

    All requests are written by a feeder thread while we read, so the pipe never deadlocks and git never
    waits for us between objects.
    """
    import threading

    shas = list(shas)
    proc = subprocess.Popen(
        ["git", f"--git-dir={git_dir}", "cat-file", "--batch"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=1 << 20,
    )
    assert proc.stdin is not None and proc.stdout is not None

    def feed() -> None:
        try:
            proc.stdin.write("".join(f"{sha}\n" for sha in shas).encode())
            proc.stdin.close()
        except BrokenPipeError:  # git died; the reader reports it
            pass

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        for sha in shas:
            header = proc.stdout.readline()
            parts = header.split()
            if len(parts) == 2 and parts[1] == b"missing":
                yield sha, None
                continue
            if len(parts) != 3:
                raise GitError(f"git cat-file --batch in {git_dir} stopped at {sha}: {header!r}")
            size = int(parts[2])
            data = proc.stdout.read(size)
            proc.stdout.read(1)  # the newline after each object
            yield sha, data
    finally:
        feeder.join()
        proc.stdout.close()
        proc.kill() if proc.poll() is None else None
        proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def missing_objects(git_dir: Path, commit: str) -> list[str]:
    """Objects of `commit`'s tree that a partial clone has not downloaded yet (no lazy fetch)."""
    out = git(git_dir, "rev-list", "--objects", "--no-walk", "--missing=print", commit)
    return [line[1:] for line in out.splitlines() if line.startswith("?")]
