"""End-to-end: fixture git repos → `python -m dataset_builder build` → Hub folder → load_dataset."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest
import yaml
from gitrepos import (
    FILTER_OVERRIDES,
    TEST_FILES,
    TRAIN_FILES,
    GitRepo,
    expected_drops,
    files_of,
    write_config,
)

from dataset_builder.__main__ import main
from dataset_builder.config import load_config
from dataset_builder.hf_builder import build_dataset, make_builder
from dataset_builder.sources import resolve_sources

SUBMODULE_SHA = "1" * 40


@pytest.fixture(scope="module")
def fixture_repos(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("repos")
    train = GitRepo.init(root / "work" / "trainrepo")
    train.commit(
        files_of(TRAIN_FILES),
        symlinks={"link.py": "flytekit/core/task.py"},
        submodules={"third/sub": SUBMODULE_SHA},
    )
    test = GitRepo.init(root / "work" / "testrepo")
    test.commit(files_of(TEST_FILES))
    mirrors = root / "mirrors"
    train.clone_bare(mirrors / "trainrepo.git")  # DIR/<name>.git, bare
    (mirrors / "testrepo").symlink_to(test.path)  # DIR/<name>, a work tree
    pins = {"trainrepo": train.head(), "testrepo": test.head()}
    config = write_config(root / "corpus.yaml", pins)
    return {"root": root, "train": train, "test": test, "mirrors": mirrors, "pins": pins, "config": config}


@pytest.fixture(scope="module")
def built(fixture_repos: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("out") / "corpus"
    sets = [x for o in FILTER_OVERRIDES for x in ("--set", o)]
    argv = [
        "build",
        "--config",
        str(fixture_repos["config"]),
        "--mirrors",
        str(fixture_repos["mirrors"]),
        "--out",
        str(out),
        "--cache-dir",
        str(out.parent / "cache"),
        "--no-progress",
        *sets,
    ]
    assert main(argv) == 0
    return {"out": out, "manifest": json.loads((out / "manifest.json").read_text()), "argv": argv}


def test_every_filter_reason_is_counted(built: dict) -> None:
    drops = built["manifest"]["drops"]
    assert drops["read"] == {"submodule": 1, "symlink": 1}
    assert drops["filter"] == expected_drops(TRAIN_FILES, TEST_FILES)
    # The train repo's notebook is the test repo's notebook: decontamination drops the train copy.
    assert drops["dedup"] == {"exact": 1, "near": 0}


def test_load_dataset_round_trip_offline(built: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    dd = datasets.load_dataset(str(built["out"]))
    assert set(dd) == {"train", "validation", "test"}
    kept_train = {p for p, (_, reason) in TRAIN_FILES.items() if reason is None} - {"examples/hello.ipynb"}
    kept_test = {p for p, (_, reason) in TEST_FILES.items() if reason is None}
    assert set(dd["train"]["path"]) | set(dd["validation"]["path"]) == kept_train
    assert set(dd["test"]["path"]) == kept_test
    assert len(dd["validation"]) > 0 and not set(dd["train"]["path"]) & set(dd["validation"]["path"])
    assert list(dd["train"]["path"]) == sorted(dd["train"]["path"])  # stable (repo, path) order
    assert dd["train"].features == datasets.Features.from_arrow_schema(
        pq.read_schema(next((built["out"] / "data").glob("train-*.parquet")))
    )


def test_record_fields(built: dict) -> None:
    dd = datasets.load_dataset(str(built["out"]))
    rows = {r["path"]: r for split in dd.values() for r in split}
    nb = rows["examples/talk.ipynb"]
    assert nb["is_notebook"] and nb["is_doc"] and nb["language"] == "python"
    assert "# %% [markdown]\n# # Hello Flyte" in nb["content"] and "print('hi')" in nb["content"]
    assert "OUTPUT_SHOULD_BE_DROPPED" not in nb["content"]
    assert rows["flytekit/core/task.py"]["parses"] is True
    assert rows["flytekit/core/broken.py"]["parses"] is False
    assert rows["README.md"]["parses"] is None and rows["README.md"]["is_doc"]
    assert rows["scripts/setup"]["language"] == "shell"
    assert rows["Dockerfile"]["language"] == "dockerfile" and rows["Makefile"]["language"] == "makefile"
    assert rows["tests/test_task.py"]["is_test"] and rows["console/src/util.spec.ts"]["is_test"]
    assert not rows["flytekit/core/task.py"]["is_test"]
    task = rows["flytekit/core/task.py"]
    assert task["commit_sha"] == built["manifest"]["sources"][0]["commit_sha"]
    assert task["bytes"] == len(task["content"].encode()) and task["lines"] == 5
    assert task["license"] == "Apache-2.0" and task["repo"] == "trainrepo"


def test_manifest_and_card(built: dict) -> None:
    out, m = built["out"], built["manifest"]
    for rel, sha in m["shards"].items():
        import hashlib

        assert hashlib.sha256((out / rel).read_bytes()).hexdigest() == sha
    assert sorted(p.name for p in (out / "data").iterdir()) == sorted(Path(p).name for p in m["shards"])
    assert m["dedup"]["by_split_pair"] == {"train↔test": {"exact": 1, "near": 0}}
    assert m["redactions"]["total"] == 0 and m["redactions"]["by_kind"] == {}
    assert sum(s["files"] for s in m["splits"].values()) == sum(
        c["files"] for per in m["per_repo"].values() for c in per.values()
    )
    card = (out / "README.md").read_text()
    meta = yaml.safe_load(card.split("---")[1])
    assert meta["license"] == "apache-2.0" and meta["task_categories"] == ["text-generation"]
    assert {s["name"]: s["num_examples"] for s in meta["dataset_info"]["splits"]} == {
        s: v["files"] for s, v in m["splits"].items()
    }
    assert 'revision="v0.1.0"' in card and m["sources"][0]["commit_sha"] in card
    assert "| filter | generated |" in card and "| dedup | exact | 1 |" in card
    assert "| train ↔ test | 1 | 0 |" in card and "No secrets or e-mail addresses were found" in card


def test_rebuild_is_byte_identical_and_replaces_output(built: dict) -> None:
    before = {p.name: p.read_bytes() for p in (built["out"] / "data").iterdir()}
    manifest = (built["out"] / "manifest.json").read_bytes()
    assert main(built["argv"]) == 0
    assert {p.name: p.read_bytes() for p in (built["out"] / "data").iterdir()} == before
    assert (built["out"] / "manifest.json").read_bytes() == manifest
    leftovers = [p.name for p in built["out"].parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_builder_class_prepares_and_caches(fixture_repos: dict, tmp_path: Path) -> None:
    cfg = load_config(fixture_repos["config"], FILTER_OVERRIDES)
    sources = resolve_sources(cfg, tmp_path, mirrors=fixture_repos["mirrors"])
    builder = make_builder(cfg, sources, tmp_path / "hf", progress=False)
    dd, report = build_dataset(builder)
    assert {s: len(d) for s, d in dd.items()}["test"] == 3
    assert report["drops"]["filter"]["generated"] == 6
    assert builder.config.version == datasets.Version("0.1.0")
    assert builder.config.corpus.repos[0].commit == fixture_repos["pins"]["trainrepo"]
    # Same config: the prepared Arrow files are reused (the sources are not even read).
    again = make_builder(cfg, {}, tmp_path / "hf", progress=False)
    dd2, report2 = build_dataset(again)
    assert report2 == report and dd2["train"]["id"] == dd["train"]["id"]
