"""`evaluate --retrieval` end to end on tiny models: four systems on the same tasks, paired differences, the
leak count, the index built beside the results (and reused), the config's checks, and the card's table."""

from __future__ import annotations

import json

import datasets
import pytest
from tinyrun import save_base_and_adapter

from training.eval_config import EvalConfig
from training.eval_results import EvalResultsError, validate_results
from training.evaluate import evaluate_main
from training.tiny import build_tiny_tokenizer

TEST = (
    "from flytekit import task, workflow\n\n\n"
    "@task\ndef scale_values(values: list, factor: int) -> list:\n"
    "    scaled_output_values = [value * factor for value in values]\n"
    "    return scaled_output_values\n\n\n"
    "@workflow\ndef wf(values: list = [1, 2]) -> list:\n    return scale_values(values=values, factor=3)\n"
)
# The train split holds the test file's hole lines in another file: retrieval can leak them.
TRAIN = (
    "def scale_helper(values, factor):\n"
    "    scaled_output_values = [value * factor for value in values]\n"
    "    return scaled_output_values\n\n\n"
    "def other(x):\n    return x + 1\n"
)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("rag")
    tok = build_tiny_tokenizer([TEST, TRAIN], vocab_size=400)
    save_base_and_adapter(root, tok, 512)
    ds = root / "ds"
    (ds / "data").mkdir(parents=True)
    test = [{"content": TEST, "repo": "flytesnacks", "path": "wf.py", "language": "python"}]
    train = [{"content": TRAIN, "repo": "flytekit", "path": "helpers.py", "language": "python"}]
    datasets.Dataset.from_list(test).to_parquet(ds / "data" / "test-00000-of-00001.parquet")
    datasets.Dataset.from_list(train).to_parquet(ds / "data" / "train-00000-of-00001.parquet")
    return root


@pytest.mark.slow
def test_four_systems_paired_differences_and_leaks(world, tmp_path):
    out = tmp_path / "eval_results.json"
    args = [
        "--base",
        str(world / "base"),
        "--adapter",
        str(world / "adapter"),
        "--dataset",
        str(world / "ds"),
    ]
    rest = ["--infill-tasks", "4", "--api-tasks", "3", "--max-new-tokens", "3", "--no-likelihood"]
    off = ["--no-decontaminate", "--no-baselines", "--retrieval", "--retrieval-k", "2"]
    results = evaluate_main([*args, "--out", str(out), *rest, *off])
    validate_results(results)
    block = results["infilling"]["retrieval"]
    assert set(block) >= {"base", "adapter", "differences", "leaks", "context", "examples"}
    tasks = results["infilling"]["base"]["overall"]["tasks"]
    assert block["base"]["overall"]["tasks"] == block["adapter"]["overall"]["tasks"] == tasks
    assert {
        "base+retrieval - base",
        "adapter+retrieval - adapter",
        "adapter - base+retrieval",
        "adapter+retrieval - base+retrieval",
    } <= set(block["differences"])
    d = block["differences"]["base+retrieval - base"]["overall"]["edit_similarity"]
    assert d["ci95"][0] <= d["value"] <= d["ci95"][1]
    leaks = block["leaks"]
    # the two long hole lines of scale_values are in helpers.py: whenever they are holes, they leak
    holes = [json.loads(line) for line in out.with_name("infilling_tasks.jsonl").read_text().splitlines()]
    long_in_train = [
        t
        for t in holes
        if t["middle"].strip() and t["middle"].strip() in TRAIN and len(t["middle"].strip()) >= 20
    ]
    assert (
        long_in_train
        and leaks["count"] == len(long_in_train)
        and set(leaks["task_ids"]) == {t["task_id"] for t in long_in_train}
    )
    assert leaks["leaked"]["base+retrieval"]["tasks"] == leaks["count"]
    assert leaks["not_leaked"]["adapter"]["tasks"] == tasks - leaks["count"]
    assert block["context"]["added_tokens_max"] <= 512
    api = results["api_usage"]["retrieval"]
    assert api["adapter"]["overall"]["tasks"] == results["api_usage"]["adapter"]["overall"]["tasks"]
    assert "api_valid" in api["adapter"]["overall"]
    settings = results["settings"]["retrieval"]
    assert settings["k"] == 2 and settings["index"] == "./retrieval_index" and settings["chunks"] >= 2
    assert (tmp_path / "retrieval_index" / "chunks.jsonl").is_file()
    outputs = [json.loads(line) for line in out.with_name("infilling_outputs.jsonl").read_text().splitlines()]
    models = {r["model"] for r in outputs}
    assert models == {"base", "adapter", "base+retrieval", "adapter+retrieval"}
    assert all("chunks" in r for r in outputs if r["model"].endswith("+retrieval"))

    from model_card.eval_view import retrieval_view

    view = retrieval_view(results["infilling"])
    assert [r["name"] for r in view["rows"]] == [
        "base model",
        "base model + retrieval",
        "**this adapter**",
        "**this adapter** + retrieval",
    ]
    assert view["recommendation"].startswith("Use ")

    # a broken retrieval block is refused
    broken = json.loads(json.dumps(results))
    del broken["infilling"]["retrieval"]["adapter"]
    with pytest.raises(EvalResultsError, match="retrieval lacks 'adapter'"):
        validate_results(broken)


def test_retrieval_config_is_checked():
    with pytest.raises(ValueError, match="retrieval_k=0 must be positive"):
        EvalConfig(dataset="d", retrieval=True, retrieval_k=0)
    with pytest.raises(ValueError, match="retrieval is off"):
        EvalConfig(dataset="d", retrieval_index="idx")
    assert EvalConfig(dataset="d", retrieval=True).retrieval_tokens == 512


def test_open_index_never_replaces_a_folder_that_is_not_an_index(tmp_path):
    from training.evaluation.retrieval_benchmark import open_index

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    config = EvalConfig(dataset="d", retrieval=True, retrieval_index=str(mine))
    with pytest.raises(FileExistsError, match="not a retrieval index"):
        open_index(config, {"train": None})
    assert (mine / "notes.txt").read_text() == "keep me"
    fresh = EvalConfig(dataset="d", retrieval=True, retrieval_index=str(tmp_path / "new"))
    with pytest.raises(ValueError, match="needs a train split"):
        open_index(fresh, {"test": None})


def test_examples_fall_back_to_the_largest_edit_similarity_changes():
    from types import SimpleNamespace

    from training.evaluation.retrieval_benchmark import _examples

    tasks = [SimpleNamespace(task_id=f"t{i}", middle="x = 1\n") for i in range(5)]
    row = lambda p, e, m=0.0: {"prediction": p, "edit_similarity": e, "exact_match": m}  # noqa: E731
    plain = [row("a", 0.1), row("b", 0.5), row("c", 0.2), row("d", 0.3), row("e", 0.0)]
    aug = [row("a", 0.1), row("B", 0.1), row("C", 0.3), row("D", 0.9), row("x = 1", 1.0, 1.0)]
    info = [{"chunks": [], "leak": False}] * 5
    out = _examples(tasks, {"adapter": plain, "adapter+retrieval": aug}, info)
    # the exact-match flip first, then the biggest moves (|0.6| before |-0.4|); t0 did not change at all
    assert [(e["task_id"], e["changed"]) for e in out] == [
        ("t4", "exact_match"), ("t3", "edit_similarity"), ("t1", "edit_similarity"),
    ]  # fmt: skip
    assert out[1]["edit_similarity"] == [0.3, 0.9] and out[1]["without"] == "d" and out[1]["with"] == "D"
