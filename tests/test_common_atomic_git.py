"""The shared helpers every stage uses: atomic writes and folder swaps, and the one git wrapper."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from flyte_llama_common.atomic import atomic_path, staged_dir, write_bytes_atomic, write_text_atomic
from flyte_llama_common.git import SAFE_OPTIONS, GitError, git, git_bytes, git_command

SECRET = "s3cr3t-Pa55"


def test_write_text_atomic_replaces_whole_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "out.json"
    write_text_atomic(path, "old ✓\n")
    write_text_atomic(path, "new ✓\n")
    assert path.read_text(encoding="utf-8") == "new ✓\n"
    write_bytes_atomic(tmp_path / "b.bin", b"\0\1")
    assert (tmp_path / "b.bin").read_bytes() == b"\0\1"
    assert sorted(p.name for p in path.parent.iterdir()) == ["out.json"]


def test_written_file_gets_the_umask_mode_not_a_private_one(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "card.md", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "card.md").stat().st_mode & 0o777 == 0o644


def test_a_failed_check_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "recipe.yaml"
    path.write_text("old\n")
    with pytest.raises(ValueError, match="bad"), atomic_path(path) as tmp:
        tmp.write_text("half\n")
        raise ValueError("bad")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["recipe.yaml"]


def test_staged_dir_swaps_whole_or_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with staged_dir(out) as tmp:
        (tmp / "a.txt").write_text("1")
        assert not out.exists()  # readers see nothing until the block ends
    assert (out / "a.txt").read_text() == "1"
    with pytest.raises(RuntimeError), staged_dir(out) as tmp:
        (tmp / "b.txt").write_text("2")
        raise RuntimeError("stopped")
    assert sorted(p.name for p in out.iterdir()) == ["a.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_git_command_puts_targets_after_dashes_and_disables_ext() -> None:
    argv = git_command(
        Path("/r.git"), "fetch", "--quiet", targets=["--upload-pack=x", "main"], options=["-c", "a=b"]
    )
    assert argv == [
        "git",
        *SAFE_OPTIONS,
        "-c",
        "a=b",
        "--git-dir=/r.git",
        "fetch",
        "--quiet",
        "--",
        "--upload-pack=x",
        "main",
    ]
    assert git_command(None, "version") == ["git", *SAFE_OPTIONS, "version"]


def test_git_errors_are_masked_one_line_and_typed(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "--bare", "--quiet", str(tmp_path / "r.git")], check=True)
    assert git(tmp_path / "r.git", "rev-parse", "--is-bare-repository").strip() == "true"
    assert (
        git_bytes(tmp_path / "r.git", "ls-tree", "-r", "-z", "4b825dc642cb6eb9a060e54bf8d69288fbee4904")
        == b""
    )
    url = f"https://user:{SECRET}@127.0.0.1:9/x.git"
    with pytest.raises(GitError) as info:
        git(tmp_path / "r.git", "fetch", targets=[url], network=True, timeout=20)
    err = info.value
    assert SECRET not in str(err) and SECRET not in err.stderr and "***@127.0.0.1" in str(err)
    assert err.stderr and "\n" not in err.stderr and not err.timed_out
    with pytest.raises(GitError) as info:
        git(None, "-c", "alias.slow=!sleep 5", "slow", timeout=0.2)
    assert info.value.timed_out and "timed out" in str(info.value)
