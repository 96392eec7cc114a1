"""The infilling benchmark published as the dataset's `infilling` config: added from evaluate's tasks file,
checked against the test split, loadable with load_dataset, pushed with the folder, reusable by evaluate."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest
from gitrepos import GitRepo, write_config

from dataset_builder.__main__ import main
from dataset_builder.infilling_config import (
    SHARD,
    InfillingConfigError,
    add_from_eval_results,
    add_infilling_config,
    task_settings,
)
from model_card.dataset_card import render_dataset_card
from model_card.publish import check_folder
from training.infill import extract_tasks, load_tasks, write_tasks

PY = '''"""Examples."""
from flytekit import task, workflow


@task
def double(x: int) -> int:
    y = x * 2
    print(y)
    return y


@workflow
def wf(x: int = 1) -> int:
    a = double(x=x)
    b = double(x=a)
    return b
'''
GO = """package main

import "fmt"

func main() {
\tx := 1
\ty := x + 2
\tfmt.Println(x, y)
}
"""
TRAIN = {"flytekit/core/base.py": "def base(a):\n    b = a + 1\n    return b\n", "README.md": "# Train\n"}


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("infill-corpus")
    train = GitRepo.init(root / "trainrepo")
    train.commit(TRAIN)
    test = GitRepo.init(root / "testrepo")
    test.commit({"examples/wf.py": PY, "examples/main.go": GO, "examples/README.md": "# Examples\n"})
    (root / "mirrors").mkdir()
    for repo in (train, test):
        (root / "mirrors" / repo.path.name).symlink_to(repo.path)
    config = write_config(root / "corpus.yaml", {"trainrepo": train.head(), "testrepo": test.head()})
    out = root / "corpus"
    argv = ["build", "--config", str(config), "--mirrors", str(root / "mirrors"), "--out", str(out)]
    assert main([*argv, "--cache-dir", str(root / "cache"), "--no-progress"]) == 0
    return out


def _test_records(folder: Path) -> list[dict]:
    return [r for p in sorted((folder / "data").glob("test-*.parquet")) for r in pq.read_table(p).to_pylist()]


@pytest.fixture
def folder(corpus: Path, tmp_path: Path) -> Path:
    """A fresh copy of the built corpus for each test (adding the config rewrites the folder)."""
    import shutil

    return Path(shutil.copytree(corpus, tmp_path / "flyte-llama-corpus"))


@pytest.fixture
def tasks_file(folder: Path) -> Path:
    tasks = extract_tasks(
        _test_records(folder), None, num_tasks=4, seed=0, prefix_tokens=None, suffix_tokens=None
    )
    path = folder.parent / "eval" / "infilling_tasks.jsonl"
    path.parent.mkdir()
    write_tasks(path, tasks)
    return path


def test_added_config_loads_next_to_the_default_one(folder: Path, tasks_file: Path) -> None:
    before = datasets.load_dataset(str(folder))
    manifest = add_infilling_config(
        folder,
        tasks_file,
        {"seed": 0, "tokenizer": "codellama/CodeLlama-7b-hf"},
        render_card=render_dataset_card,
    )

    tasks = load_dataset_rows(folder)
    expected = sorted(
        (json.loads(line) for line in tasks_file.read_text().splitlines()), key=lambda r: r["task_id"]
    )
    assert tasks == [{k: r[k] for k in tasks[0]} for r in expected]
    assert {t["language"] for t in tasks} == {"python", "go"}
    after = datasets.load_dataset(str(folder))  # the default config is untouched
    assert {s: after[s].num_rows for s in after} == {s: before[s].num_rows for s in before}

    assert manifest["infilling"]["tasks"] == 4 and manifest["infilling"]["settings"]["seed"] == 0
    assert sum(manifest["infilling"]["by_language_kind"].values()) == 4
    assert json.loads((folder / "manifest.json").read_text()) == manifest
    assert SHARD in manifest["shards"]
    card = (folder / "README.md").read_text()
    assert "config_name: infilling" in card and "## Infilling benchmark" in card
    assert '"infilling", split="test"' in card and "codellama/CodeLlama-7b-hf" in card
    assert check_folder(folder, "dataset") == []  # the push check covers the new shard and its sha256
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temp folder left


def load_dataset_rows(folder: Path) -> list[dict]:
    return datasets.load_dataset(str(folder), "infilling", split="test").to_list()


def test_adding_again_replaces_with_identical_bytes(folder: Path, tasks_file: Path) -> None:
    add_infilling_config(folder, tasks_file, render_card=render_dataset_card)
    first = _files(folder)
    add_infilling_config(folder, tasks_file, render_card=render_dataset_card)
    assert _files(folder) == first
    assert sorted(p for p in first if p.startswith("infilling/")) == [SHARD]


def test_out_is_a_new_folder_and_the_input_is_left_as_it_was(folder: Path, tasks_file: Path) -> None:
    before = _files(folder)
    out = folder.parent / "with-benchmark"
    add_infilling_config(folder, tasks_file, render_card=render_dataset_card, out=out)
    assert _files(folder) == before
    after = _files(out)
    assert SHARD in after and after.keys() - {SHARD} == before.keys()
    assert load_dataset_rows(out) and check_folder(out, "dataset") == []


def test_tasks_that_do_not_match_the_test_split_are_refused(folder: Path, tasks_file: Path) -> None:
    before = _files(folder)
    good = load_tasks(str(tasks_file))
    for bad, message in (
        (replace(good[0], middle=good[0].middle + "x\n"), "the file changed"),
        (replace(good[0], path="examples/other.py"), "examples/other.py is not in the test split"),
    ):
        write_tasks(tasks_file, [bad, *good[1:]])
        with pytest.raises(InfillingConfigError, match=message):
            add_infilling_config(folder, tasks_file, render_card=render_dataset_card)
    assert _files(folder) == before  # nothing was written
    with pytest.raises(InfillingConfigError, match="not a dataset folder"):
        add_infilling_config(folder / "data", tasks_file, render_card=render_dataset_card)


def test_cli_adds_from_eval_results_and_explains_a_missing_tasks_file(
    folder: Path, tasks_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tasks_file.with_name("eval_results.json")
    settings = {"infill": {"seed": 3, "num_tasks": 4, "prefix_tokens": 64, "suffix_tokens": 32}}
    base = {"base": {"id": "/home/me/base", "revision": None}}  # a local path never reaches the card
    results.write_text(
        json.dumps({"settings": settings, "models": base, "infilling": {"tasks_file": tasks_file.name}})
    )
    assert main(["add-infilling", "--folder", str(folder), "--eval-results", str(results)]) == 0
    assert "added 4 infilling tasks" in capsys.readouterr().out
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["infilling"]["settings"] == {**settings["infill"], "tokenizer": None}
    assert "/home/me" not in (folder / "README.md").read_text()
    assert "the last 64 tokens" in (folder / "README.md").read_text()

    results.write_text(json.dumps({"settings": {}, "models": base}))
    assert main(["add-infilling", "--folder", str(folder), "--eval-results", str(results)]) == 2
    assert "--infill-tasks N" in capsys.readouterr().err


def test_task_settings_keep_hub_tokenizers_only() -> None:
    results = {"settings": {"infill": {"seed": 1, "mode": "psm"}}, "models": {"base": {"id": "org/model"}}}
    assert task_settings(results) == {"seed": 1, "tokenizer": "org/model"}  # mode: how they were run


def test_evaluate_loads_published_tasks_from_a_folder_or_a_file(folder: Path, tasks_file: Path) -> None:
    with pytest.raises(FileNotFoundError, match="add-infilling"):
        load_tasks(str(folder))
    add_infilling_config(folder, tasks_file, render_card=render_dataset_card)
    from_file = load_tasks(str(tasks_file))
    assert load_tasks(str(folder)) == sorted(from_file, key=lambda t: t.task_id)
    assert all(isinstance(t.span, tuple) for t in load_tasks(str(folder)))


def test_hub_ids_load_the_infilling_config_at_the_revision(
    folder: Path, tasks_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Hub id goes through load_dataset(id, "infilling", split="test", revision=...): here the 'Hub' is
    the local Hub-layout folder, so the call is the real one with only the location swapped."""
    add_infilling_config(folder, tasks_file, render_card=render_dataset_card)
    calls = []
    real = datasets.load_dataset

    def fake_hub(path, *args, **kwargs):
        calls.append((path, args, dict(kwargs)))
        kwargs.pop("revision")
        return real(str(folder), *args, **kwargs)

    monkeypatch.setattr(datasets, "load_dataset", fake_hub)
    tasks = load_tasks("my-org/flyte-llama-corpus", "v0.1.0")
    assert calls == [("my-org/flyte-llama-corpus", ("infilling",), {"split": "test", "revision": "v0.1.0"})]
    assert tasks == load_tasks(str(folder))

    def offline(*args, **kwargs):
        raise ConnectionError("offline")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(RuntimeError, match="could not load the `infilling` config of 'my-org/x'"):
        load_tasks("my-org/x")


def test_a_crash_while_writing_leaves_the_folder_as_it_was(
    folder: Path, tasks_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _files(folder)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # a kill between the shard and the card

    with pytest.raises(KeyboardInterrupt):
        add_infilling_config(folder, tasks_file, render_card=crash)
    assert _files(folder) == before
    assert [p.name for p in folder.parent.iterdir() if p.name.startswith(".")] == []  # temp folder removed


def test_a_file_that_is_not_a_tasks_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "tasks.jsonl"
    bad.write_text('{"task_id": "x"}\n')
    with pytest.raises(InfillingConfigError, match=r"tasks\.jsonl:1: task lacks \['repo'"):
        load_tasks(str(bad))
    bad.write_text("not json\n")
    with pytest.raises(InfillingConfigError, match=r"tasks\.jsonl:1: not JSON"):
        load_tasks(str(bad))
    bad.write_text("\n")
    with pytest.raises(InfillingConfigError, match="has no tasks"):
        load_tasks(str(bad))


def test_the_api_usage_tasks_become_a_second_config(folder: Path, tasks_file: Path) -> None:
    """eval_results.json naming API-usage tasks adds them as the `api_usage` config, beside `infilling`."""
    from training.evaluation.api_usage import FAMILIES, api_holes

    api = extract_tasks(
        _test_records(folder), None, num_tasks=3, seed=0, prefix_tokens=None, suffix_tokens=None,
        holes_of=api_holes, kinds=FAMILIES, languages=("python",),
    )  # fmt: skip
    write_tasks(tasks_file.with_name("api_usage_tasks.jsonl"), api)
    results = tasks_file.with_name("eval_results.json")
    names = {
        "infilling": {"tasks_file": tasks_file.name},
        "api_usage": {"tasks_file": "api_usage_tasks.jsonl"},
    }
    results.write_text(json.dumps({"settings": {}, "models": {}, **names}))
    out = folder.parent / "with-api"
    manifest = add_from_eval_results(folder, results, render_card=render_dataset_card, out=out)
    assert manifest["api_usage"]["tasks"] == len(api) > 0 and manifest["infilling"]["tasks"] == 4
    assert set(manifest["api_usage"]["by_kind"]) <= set(FAMILIES)
    loaded = datasets.load_dataset(str(out), "api_usage", split="test")
    assert sorted(loaded["task_id"]) == sorted(t.task_id for t in api)
    assert datasets.load_dataset(str(out), "infilling", split="test").num_rows == 4
    assert "## Flyte API-usage benchmark (`api_usage` config)" in (out / "README.md").read_text()
    assert check_folder(out, "dataset") == []
