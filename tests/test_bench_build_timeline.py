"""bench/build_timeline.py on a real (tiny) cold build: every phase is found, in order, and adds up."""

from __future__ import annotations

import importlib.util
import math
from itertools import pairwise
from pathlib import Path

from gitrepos import TEST_FILES, TRAIN_FILES, GitRepo, files_of, write_config

SCRIPT = Path(__file__).parents[1] / "bench" / "build_timeline.py"


def _load():
    spec = importlib.util.spec_from_file_location("build_timeline", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_timeline_of_a_cold_build(tmp_path: Path) -> None:
    mirrors = tmp_path / "mirrors"
    pins = {}
    for name, files in (("trainrepo", TRAIN_FILES), ("testrepo", TEST_FILES)):
        repo = GitRepo.init(tmp_path / "work" / name)
        repo.commit(files_of(files))
        repo.clone_bare(mirrors / f"{name}.git")
        pins[name] = repo.head()
    timeline = _load()
    calls, wall, cpu = timeline.run_once(mirrors, write_config(tmp_path / "corpus.yaml", pins))
    phases = timeline.phases(calls, wall)
    assert [p[0] for p in phases] == [
        "start-up", "resolve pins", "read, filter, redact", "commit dates", "dedup", "parse check",
        "Arrow pass", "export", "summary, exit",
    ]  # fmt: skip
    assert phases[0][1] == 0 and phases[-1][2] == wall
    assert all(a[2] == b[1] for a, b in pairwise(phases))  # contiguous
    assert all(end >= start for _, start, end, _ in phases)
    assert all(own >= 0 for *_, own in phases[:-1]) and math.isnan(phases[-1][3])
    # Two repos miss the cache, so both were read in pool workers, each logged with its repo name.
    parent = next(c["pid"] for c in calls if c["fn"] == "build_corpus")
    assert sorted(c["repo"] for c in calls if c["fn"] == "_process_uncached" and c["pid"] != parent) == [
        "testrepo",
        "trainrepo",
    ]
    text = timeline.report(calls, wall, cpu, 2)
    assert "floor of this design on 2 cores" in text and f"wall {wall:.2f}s" in text
