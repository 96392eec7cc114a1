"""Hostile builds: killed or stopped builds (workers, temp folders); file names that are not UTF-8."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from gitrepos import GitRepo, write_config

from dataset_builder.__main__ import main
from flyte_llama_common import atomic

ROOT = Path(__file__).resolve().parents[1]

# Run as a script: every repo's per-repo step (pipeline._process_uncached, which the pool runs) records its
# pid in MARKS and then hangs, so the test can stop the build while its workers run.
DRIVER = """\
import os, sys, time
from pathlib import Path
from dataset_builder import pipeline
from dataset_builder.__main__ import main

def hang(*args, **kwargs):
    (Path(sys.argv[1]) / str(os.getpid())).touch()
    time.sleep(120)

pipeline._process_uncached = hang
sys.exit(main(sys.argv[2:]))
"""


def _repos(root: Path, extra_train: dict[str, str] | None = None) -> tuple[Path, Path]:
    """Two small repos (train + test) behind DIR/<name>, and their recipe."""
    train = GitRepo.init(root / "work" / "trainrepo")
    train.commit({"pkg/core.py": "def add(a, b):\n    return a + b\n", **(extra_train or {})})
    test = GitRepo.init(root / "work" / "testrepo")
    test.commit({"examples/hello.py": "def hello():\n    return 'hi'\n"})
    mirrors = root / "mirrors"
    mirrors.mkdir()
    (mirrors / "trainrepo").symlink_to(train.path)
    (mirrors / "testrepo").symlink_to(test.path)
    return mirrors, write_config(root / "corpus.yaml", {"trainrepo": train.head(), "testrepo": test.head()})


def _argv(mirrors: Path, config: Path, out: Path, cache: Path) -> list[str]:
    paths = ["--mirrors", str(mirrors), "--config", str(config), "--out", str(out), "--cache-dir", str(cache)]
    return ["build", *paths, "--no-progress"]


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None


def _descendants(pid: int) -> set[int]:
    """Every live process below `pid`, from the PPid field of /proc/*/stat (psutil may be absent)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))):
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    out, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.add(child)
            todo.append(child)
    return out


def _alive(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")  # a zombie holds no memory and runs nothing


def _start_hung_build(tmp_path: Path, out: Path) -> tuple[subprocess.Popen, set[int]]:
    """The CLI build in a subprocess, returned once both pool workers hang in their repo."""
    mirrors, config = _repos(tmp_path)
    marks = tmp_path / "marks"
    marks.mkdir()
    (tmp_path / "driver.py").write_text(DRIVER)
    argv = _argv(mirrors, config, out, tmp_path / "cache")
    proc = subprocess.Popen(
        [sys.executable, str(tmp_path / "driver.py"), str(marks), *argv],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while len(list(marks.iterdir())) < 2:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the pool workers never started"
        time.sleep(0.05)
    workers = {int(p.name) for p in marks.iterdir()}
    assert workers <= _descendants(proc.pid)
    return proc, workers


def _wait_gone(pids: set[int], seconds: float = 5.0) -> set[int]:
    deadline = time.monotonic() + seconds
    while (left := {p for p in pids if _alive(p)}) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_killed_build_leaves_no_workers_and_its_temp_folder_is_removed_next_time(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "out" / "corpus"
    proc, workers = _start_hung_build(tmp_path, out)
    stale = [p for p in out.parent.iterdir() if p.name.startswith(".corpus.tmp-")]
    assert len(stale) == 1, "the build stages its output beside --out before the workers start"
    family = _descendants(proc.pid) | workers
    proc.kill()
    proc.wait()
    assert _wait_gone(family) == set(), "the killed build's workers are still running"

    # A live build's folder (this test process owns it) and one of an earlier version are left alone.
    live = atomic.staging_dir(out)
    legacy = out.parent / ".corpus.tmp-abcd1234"
    legacy.mkdir()
    mirrors, config = tmp_path / "mirrors", tmp_path / "corpus.yaml"
    with caplog.at_level(logging.WARNING, logger="dataset_builder"):
        assert main(_argv(mirrors, config, out, tmp_path / "cache")) == 0
    assert f"removed {stale[0]}, left by a build that no longer runs" in caplog.text
    assert f"{legacy} looks left over from an earlier build" in caplog.text
    assert sorted(p.name for p in out.parent.iterdir()) == sorted(["corpus", live.name, legacy.name])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["splits"]["test"]["files"] == 1
    assert sum(s["files"] for s in manifest["splits"].values()) == 2
    assert pq.read_table(out / "data" / "test-00000-of-00001.parquet")["path"].to_pylist() == [
        "examples/hello.py"
    ]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigterm_stops_the_workers_and_removes_the_temp_folder(tmp_path: Path) -> None:
    out = tmp_path / "out" / "corpus"
    proc, workers = _start_hung_build(tmp_path, out)
    family = _descendants(proc.pid) | workers
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 143
    assert err.strip().splitlines() == [
        "error: build stopped by SIGTERM; its workers and temporary folders were removed and no "
        f"half-written output was left: run the same command again to build {out}"
    ]
    assert "Traceback" not in err
    assert _wait_gone(family) == set()
    assert list(out.parent.iterdir()) == [], "nothing may be left beside --out"


def test_interrupted_swap_is_undone_and_stale_copies_removed(tmp_path: Path) -> None:
    """A build killed between replace_dir's two renames left the only good copy aside: it is put back."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    tmp_name = f".corpus.tmp-{atomic.owner_tag()}-x".replace(f"_{os.getpid()}_", f"_{dead.pid}_")
    aside = tmp_path / f".corpus.old-{tmp_name}"
    aside.mkdir()
    (aside / "manifest.json").write_text("{}")
    half = tmp_path / tmp_name
    half.mkdir()
    assert atomic.remove_stale(tmp_path / "corpus") == [half]
    assert (tmp_path / "corpus" / "manifest.json").read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus"]


def test_file_name_that_is_not_utf8_is_dropped_not_a_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mirrors, config = _repos(tmp_path)
    train = GitRepo(tmp_path / "work" / "trainrepo", commits=1)
    (train.path / os.fsdecode(b"pkg/caf\xe9 \xff.py")).write_text("x = 1\n")  # Latin-1 name, invalid UTF-8
    sha = train.commit({})
    write_config(config, {"trainrepo": sha, "testrepo": GitRepo(tmp_path / "work" / "testrepo").head()})
    assert (
        b"\xff"
        in subprocess.run(
            ["git", "-C", str(train.path), "ls-tree", "-r", "-z", "--name-only", sha], capture_output=True
        ).stdout
    )
    out = tmp_path / "out" / "corpus"
    assert main(_argv(mirrors, config, out, tmp_path / "cache")) == 0
    assert "Traceback" not in capsys.readouterr().err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["drops"]["read"] == {"undecodable_path": 1}
    paths = [p for split in ("train", "validation") for p in _paths(out, split)]
    assert paths == ["pkg/core.py"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "corpus.yaml", "mirrors", "out", "work"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["corpus"]


def _paths(out: Path, split: str) -> list[str]:
    return [
        p
        for f in sorted((out / "data").glob(f"{split}-*.parquet"))
        for p in pq.read_table(f)["path"].to_pylist()
    ]


def test_pool_workers_take_no_progress_bar_lock(tmp_path, monkeypatch):
    """Pool workers are forked from a process with threads (tqdm's monitor, pytest-xdist's): a lock that one
    of them holds at fork time stays held forever in the child. tqdm's write lock is such a lock (taken even
    by a disabled bar), and workers used to hang in `tqdm.__new__` now and then. So a build without progress
    bars (every pool worker runs so) must make none at all."""
    from dataset_builder import repo_step

    def no_tqdm(*args, **kwargs):
        raise AssertionError("a progress bar was made in a build without progress bars")

    monkeypatch.setattr(repo_step, "tqdm", no_tqdm)  # inherited by the forked workers
    mirrors, config = _repos(tmp_path)
    assert main(_argv(mirrors, config, tmp_path / "out", tmp_path / "cache")) == 0
    assert (tmp_path / "out" / "manifest.json").is_file()
