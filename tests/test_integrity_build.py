"""Issue 3 through the FULL build: fixture git repos with planted copies and secrets → build_corpus →
what is kept and dropped, no secret in the output, byte-identical rebuilds, per-repo cache behaviour."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest
import yaml
from gitrepos import GitRepo
from test_dedup import code, near_copy
from test_redact import AWS_KEY, HF, PLANTED, SECRETS

from dataset_builder.build import build_corpus
from dataset_builder.config import SplitConfig
from dataset_builder.splits import assign_split
from model_card.dataset_card import render_dataset_card

SPLITS = SplitConfig(validation_fraction=0.1, salt="integrity")
BASE, EXECUTOR, SHARED, TESTED, VAL = (code(seed) for seed in (101, 102, 103, 104, 105))
REFORMATTED = "\n".join("  " + line.replace(" = ", "  =  ") + "  " for line in BASE.split("\n"))

# The archived component repo (older commit): most of its files are copies of the monorepo's or the
# test repo's, as in reality.
ARCHIVED = {
    "pkg/ctrl.py": BASE,  # exact copy (whitespace aside) of mono's prop/ctrl.py
    "pkg/executor.py": EXECUTOR,  # mono holds a near copy
    "pkg/image_spec.py": SHARED,  # copied into the test repo → train copy dropped
    "pkg/tested.py": TESTED,  # the test repo holds a near copy → train copy dropped
    "pkg/val_1.py": VAL,  # lands in validation (salted hash); mono's train copy wins
    "pkg/unique.py": code(106),
    "config.yaml": f"aws_access_key_id: {AWS_KEY}\nregion: us-east-1\n",
}
MONO = {
    "prop/ctrl.py": REFORMATTED,
    "prop/executor.py": near_copy(EXECUTOR),  # renamed identifier, reformatted, three lines changed
    "lib/val_source.py": VAL,
    "mono_only.py": code(107),
    "secrets.py": PLANTED,  # every kind of planted secret (tests/test_redact.py)
}
SNACKS = {
    "examples/image_spec.py": SHARED,
    "examples/tested.py": near_copy(TESTED),
    "examples/hf.py": f'HF_TOKEN = "{HF}"\nprint(HF_TOKEN)\n',
}
EXPECTED_REMOVED = {  # (repo, path) → (reason, kept repo, kept path)
    ("archived", "pkg/ctrl.py"): ("exact", "mono", "prop/ctrl.py"),
    ("archived", "pkg/executor.py"): ("near", "mono", "prop/executor.py"),
    ("archived", "pkg/image_spec.py"): ("exact", "snacks", "examples/image_spec.py"),
    ("archived", "pkg/tested.py"): ("near", "snacks", "examples/tested.py"),
    ("archived", "pkg/val_1.py"): ("exact", "mono", "lib/val_source.py"),
}


def _config(path: Path, pins: dict[str, str]) -> Path:
    # archived comes first in the config, mono has the newer commit: the commit date must decide.
    roles = {"archived": "train", "mono": "train", "snacks": "test"}
    repos = [
        {"name": n, "url": f"https://example.invalid/{n}", "ref": "main", "commit": pins[n],
         "split": roles[n], "license": "Apache-2.0"}
        for n in roles
    ]  # fmt: skip
    splits = {"validation_fraction": SPLITS.validation_fraction, "salt": SPLITS.salt}
    path.write_text(yaml.safe_dump({"version": "0.3.0", "repos": repos, "splits": splits}, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def repos(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("integrity")
    mirrors = root / "mirrors"
    mirrors.mkdir()
    work = {}
    for name, files in (("archived", ARCHIVED), ("mono", MONO), ("snacks", SNACKS)):
        work[name] = GitRepo.init(root / "work" / name)
        work[name].commit(files)
        (mirrors / name).symlink_to(work[name].path)  # a work tree: later commits show up at once
    work["mono"].commit({"NOTES.md": "# Monorepo\n\nNewer than the archived repos.\n"})  # newest pin
    pins = {name: repo.head() for name, repo in work.items()}
    return {"root": root, "mirrors": mirrors, "work": work, "config": _config(root / "corpus.yaml", pins)}


def _build(repos: dict, out: Path, cache: Path, **kwargs) -> tuple[dict, dict]:
    stats: dict = {}
    manifest = build_corpus(
        out,
        repos["config"],
        mirrors=repos["mirrors"],
        cache_dir=cache,
        progress=False,
        stats=stats,
        render_card=render_dataset_card,
        **kwargs,
    )
    return manifest, stats


@pytest.fixture(scope="module")
def built(repos: dict) -> dict:
    out = repos["root"] / "out-a"
    manifest, stats = _build(repos, out, repos["root"] / "cache-a")
    return {"out": out, "manifest": manifest, "stats": stats}


def _rows(out: Path) -> dict[tuple[str, str], dict]:
    rows = {}
    for shard in sorted((out / "data").glob("*.parquet")):
        for row in pq.read_table(shard).to_pylist():
            rows[row["repo"], row["path"]] = row
    return rows


def test_planted_paths_land_in_the_assumed_splits() -> None:
    assert assign_split("train", "archived", "pkg/val_1.py", SPLITS) == "validation"
    others = [("archived", p) for p in ARCHIVED if p != "pkg/val_1.py"] + [("mono", p) for p in MONO]
    assert {assign_split("train", repo, path, SPLITS) for repo, path in others} == {"train"}


def test_copies_are_dropped_and_the_right_copy_survives(built: dict) -> None:
    rows = _rows(built["out"])
    everything = (
        {("archived", p) for p in ARCHIVED} | {("mono", p) for p in MONO} | {("snacks", p) for p in SNACKS}
    )
    everything.add(("mono", "NOTES.md"))
    assert set(rows) == everything - set(EXPECTED_REMOVED)
    dedup = built["manifest"]["dedup"]
    assert dedup["removed"]["files"] == 5 and dedup["removed"]["exact"] == 3 and dedup["removed"]["near"] == 2
    assert dedup["by_split_pair"] == {
        "train↔test": {"exact": 1, "near": 1},
        "validation↔train": {"exact": 1, "near": 0},
        "within train": {"exact": 1, "near": 1},
    }
    assert dedup["by_repo_pair"] == {
        "archived ↔ mono": {"exact": 2, "near": 1},
        "archived ↔ snacks": {"exact": 1, "near": 1},
    }
    assert built["manifest"]["drops"]["dedup"] == {"exact": 3, "near": 2}
    assert rows["snacks", "examples/tested.py"]["split"] == "test"  # the test set stays intact


def test_no_planted_secret_reaches_the_output_or_the_cache(built: dict, repos: dict) -> None:
    rows = _rows(built["out"])
    text = "\n".join(r["content"] for r in rows.values())
    text += (built["out"] / "manifest.json").read_text() + (built["out"] / "README.md").read_text()
    cached = [
        r["content"] for p in (repos["root"] / "cache-a" / "per_repo").rglob("*.parquet")
        for r in pq.read_table(p).to_pylist()
    ]  # fmt: skip
    for secret in [*SECRETS, AWS_KEY, HF]:
        assert secret not in text and not any(secret in c for c in cached), secret
    assert rows["mono", "secrets.py"]["redactions"] == 11
    assert (
        rows["archived", "config.yaml"]["redactions"] == 1
        and rows["snacks", "examples/hf.py"]["redactions"] == 1
    )
    assert rows["mono", "mono_only.py"]["redactions"] == 0
    red = built["manifest"]["redactions"]
    assert red["total"] == 13 and red["files"] == 3
    assert red["by_repo"]["archived"] == {"aws_access_key": 1} and red["by_repo"]["snacks"] == {
        "huggingface_token": 1
    }
    assert sum(red["by_repo"]["mono"].values()) == 11
    card = (built["out"] / "README.md").read_text()
    assert "| train ↔ test | 1 | 1 |" in card and "| validation ↔ train | 1 | 0 |" in card
    assert "| archived ↔ mono | 2 | 1 |" in card and "| aws_access_key | 2 |" in card
    assert "13 secrets and e-mail addresses in 3 files" in card


def test_parse_check_runs_on_survivors(built: dict) -> None:
    rows = _rows(built["out"])
    assert rows["mono", "mono_only.py"]["parses"] is True and rows["mono", "NOTES.md"]["parses"] is None
    assert built["stats"]["parsed"] == len(rows)  # the dropped copies were never parsed


def test_two_builds_are_byte_identical(built: dict, repos: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = repos["root"] / "out-b"
    # Cold cache, another folder, another worker count: the same bytes.
    _build(repos, out, repos["root"] / "cache-b", workers=1)
    files_a = sorted(p.relative_to(built["out"]) for p in built["out"].rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    # README, manifest, train and test shards: the only validation file was a copy, so no validation split.
    assert files_a == files_b and len(files_a) == 4
    for rel in files_a:
        assert (built["out"] / rel).read_bytes() == (out / rel).read_bytes(), rel
    assert set(datasets.load_dataset(str(out))) == {"train", "test"}


def test_cache_skips_unchanged_repos_and_rebuilds_a_changed_one(built: dict, repos: dict) -> None:
    cache, out = repos["root"] / "cache-a", repos["root"] / "out-c"
    assert built["stats"]["computed"] == ["archived", "mono", "snacks"]  # cold: every repo
    _, stats = _build(repos, out, cache)
    assert stats["computed"] == [] and stats["parsed"] == 0  # prepared build reused
    # A dedup setting is corpus-wide: no repo is re-read. At 0.9 the two near copies (Jaccard ~0.8)
    # survive, so they are parse-checked for the first time; nothing else is.
    manifest, stats = _build(repos, out, cache, overrides=["dedup.threshold=0.9"])
    assert stats == {"computed": [], "parsed": 2}
    assert manifest["dedup"]["config"]["threshold"] == 0.9 and manifest["dedup"]["removed"]["near"] == 0
    # A new pin for one repo: only that repo is re-read; dedup re-runs over everything. The new commit
    # is as new as mono's (fixture commits tick a minute each), so the tie goes to the config order:
    # archived's copies now survive and mono's are dropped.
    new_sha = repos["work"]["archived"].commit({"pkg/added.py": code(108), "pkg/unique.py": code(109)})
    manifest, stats = _build(repos, out, cache, overrides=[f"repos.archived.commit={new_sha}"])
    assert stats["computed"] == ["archived"]
    rows = _rows(out)
    assert ("archived", "pkg/added.py") in rows and ("archived", "pkg/ctrl.py") in rows
    assert ("mono", "prop/ctrl.py") not in rows and ("mono", "prop/executor.py") not in rows
    # Only the re-read repo's survivors are parse-checked; the others come from their memo.
    assert stats["parsed"] == sum(repo == "archived" for repo, _ in rows) == 5
    assert manifest["dedup"]["by_repo_pair"]["archived ↔ mono"] == {"exact": 2, "near": 1}
    assert json.loads((out / "manifest.json").read_text())["sources"][0]["commit_sha"] == new_sha


def test_repo_work_starts_early_only_for_cache_misses(built: dict, repos: dict) -> None:
    # build_corpus starts the per-repo work before importing `datasets` (pipeline.repos_started).
    from dataset_builder.config import load_config
    from dataset_builder.pipeline import repos_started
    from dataset_builder.sources import resolve_sources

    cfg = load_config(repos["config"])
    resolved = resolve_sources(cfg, repos["root"] / "cache-x", repos["mirrors"], {})
    with repos_started(cfg, resolved, repos["root"] / "cache-a" / "per_repo", workers=2) as started:
        assert started == {}  # every repo has a per-repo entry: nothing to start, no pool
    with repos_started(cfg, resolved, repos["root"] / "cache-x" / "per_repo", workers=2) as started:
        assert set(started) == {"archived", "mono", "snacks"}
    # Never collected (as when the prepared build is reused): the block still ends, the work is stopped.
    assert all(f.done() for f in started.values())
