"""`evaluate` end to end with the evaluation suite: leaked tasks dropped and counted, the fresh slice from a
back-dated git history, baselines and paired intervals in the results, and a card that shows them."""

from __future__ import annotations

import json

import datasets
import pytest
from gitrepos import GitRepo
from tinyrun import save_base_and_adapter

from training.eval_results import validate_results
from training.evaluate import evaluate_main
from training.infill import read_tasks
from training.tiny import build_tiny_tokenizer

OLD = (
    "import os\n\n\ndef shared(first_value, second_value):\n    total_amount = first_value + second_value\n"
    "    scaled_amount = total_amount * 3 + first_value\n    return scaled_amount - second_value\n"
)
NEW = (
    "\n\ndef fresh_one(x):\n    y = x * 2\n    z = y + os.sep.count('/')\n    return z\n"
    "\n\ndef fresh_two(p, q):\n    r = p - q\n    s = r * r\n    return s + 1\n"
)
FLYTE = (
    "from flytekit import Resources, task, workflow\n\n\n"
    '@task(requests=Resources(cpu="1", mem="1Gi"), retries=2)\n'
    'def double(x: int) -> int:\n    limits = Resources(cpu="2")\n    return x * 2\n\n\n'
    "@workflow\ndef wf(x: int = 3) -> int:\n    return double(x=x)\n"
)
TRAIN = OLD.replace("import os\n", "import   os\n") + "\n\ndef unrelated():\n    return 42\n"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("suite")
    repo = GitRepo.init(root / "git" / "flytesnacks")
    repo.commit({"wf.py": OLD}, when="2022-03-01T00:00:00+00:00")
    sha = repo.commit({"wf.py": OLD + NEW, "flyte_wf.py": FLYTE}, when="2024-06-01T00:00:00+00:00")
    tok = build_tiny_tokenizer([OLD + NEW, TRAIN], vocab_size=400)
    save_base_and_adapter(root, tok, 256)
    ds = root / "ds"
    (ds / "data").mkdir(parents=True)
    test = [
        {"content": OLD + NEW, "repo": "flytesnacks", "path": "wf.py", "language": "python"},
        {"content": FLYTE, "repo": "flytesnacks", "path": "flyte_wf.py", "language": "python"},
    ]
    train = [{"content": TRAIN, "repo": "flytekit", "path": "copy.py", "language": "python"}]
    datasets.Dataset.from_list(test).to_parquet(ds / "data" / "test-00000-of-00001.parquet")
    datasets.Dataset.from_list(train).to_parquet(ds / "data" / "train-00000-of-00001.parquet")
    manifest = {
        "sources": [{"name": "flytesnacks", "commit_sha": sha}, {"name": "flytekit", "commit_sha": "0" * 40}]
    }
    (ds / "manifest.json").write_text(json.dumps(manifest))
    return root


def test_evaluate_drops_leaks_scores_fresh_slice_baselines_and_pairs(world, tmp_path):
    out = tmp_path / "eval_results.json"
    models = ["--base", str(world / "base"), "--adapter", str(world / "adapter")]
    tasks = ["--infill-tasks", "12", "--max-new-tokens", "4", "--git-dirs", str(world / "git")]
    results = evaluate_main([*models, "--dataset", str(world / "ds"), "--out", str(out), *tasks])
    validate_results(results)
    infilling = results["infilling"]
    decon = infilling["decontamination"]
    assert decon["dropped"]["window_seen"] >= 1  # `shared` is copied in train
    assert (
        decon["kept"]
        == infilling["base"]["overall"]["tasks"]
        == results["settings"]["infill"]["scored_tasks"]
    )
    assert decon["test_line_overlap"]["in_train"] >= 3, decon
    tasks = read_tasks(out.with_name("infilling_tasks.jsonl"))
    kept = [t for t in tasks if t.contamination == "clean"]
    assert {t.contamination for t in tasks} <= {"clean", "window_seen", "middle_seen"}
    # Every line of `shared` is 20+ characters and occurs in train: none of its holes survives.
    assert kept and not any("amount" in t.middle for t in kept)
    # Freshness: lines of `fresh_one`/`fresh_two` were authored in 2024, those of `shared` in 2022.
    for t in tasks:
        assert t.authored_first is not None
        assert t.fresh == (t.authored_first >= "2023-08-01")
    assert infilling["fresh"]["tasks"] == sum(bool(t.fresh) for t in kept)
    assert infilling["fresh"]["note"]  # a handful of tasks can support no claim at ±5 points
    if infilling["fresh"]["tasks"]:
        assert infilling["adapter"]["fresh"]["tasks"] == infilling["fresh"]["tasks"]
    assert set(infilling["baselines"]) == {
        "previous_line", "file_copy", "ngram", "byte_unigram", "byte_ngram"
    }  # fmt: skip
    # the byte-count floors have a likelihood per char (not per token) and write no fill
    byte = infilling["baselines"]["byte_ngram"]["overall"]
    assert byte["nats_per_char_psm"] > 0 and byte["exact_match"] is None
    assert "nats_per_token_psm" not in byte
    assert "nats_per_token_psm" not in infilling["differences"]["adapter - byte_ngram"]["overall"]
    section = results["held_out_bits_per_byte"]
    assert set(section["systems"]) == {"base", "adapter", "byte_unigram", "byte_ngram"}
    assert {"adapter - base", "adapter - byte_ngram", "base - byte_unigram"} <= set(section["differences"])
    assert results["settings"]["baselines"]["byte_ngram_order"] in range(1, 9)
    assert {"adapter - base", "adapter - previous_line", "base - ngram"} <= set(infilling["differences"])
    pair = infilling["differences"]["adapter - base"]["overall"]
    lo, hi = pair["exact_match"]["ci95"]
    assert lo <= pair["exact_match"]["value"] <= hi
    for model in ("base", "adapter"):
        overall = infilling[model]["overall"]
        assert overall["nats_per_char_psm"] > 0 and overall["nats_per_char_spm"] > 0
        assert overall["ci95"]["edit_similarity"][0] <= overall["edit_similarity"]


def test_no_decontamination_and_no_baselines_when_asked(world, tmp_path):
    out = tmp_path / "eval_results.json"
    off = ["--no-decontaminate", "--no-baselines", "--no-likelihood"]
    where = ["--base", str(world / "base"), "--dataset", str(world / "ds"), "--out", str(out)]
    results = evaluate_main([*where, "--infill-tasks", "3", "--max-new-tokens", "2", *off])
    infilling = results["infilling"]
    assert "decontamination" not in infilling and "baselines" not in infilling and "fresh" not in infilling
    assert "nats_per_char_psm" not in infilling["base"]["overall"]
    assert {t.contamination for t in read_tasks(out.with_name("infilling_tasks.jsonl"))} == {"unchecked"}


def test_api_usage_benchmark_scores_families_with_validity(world, tmp_path):
    out = tmp_path / "eval_results.json"
    models = ["--base", str(world / "base"), "--adapter", str(world / "adapter")]
    rest = ["--infill-tasks", "2", "--api-tasks", "6", "--max-new-tokens", "4", "--no-likelihood"]
    results = evaluate_main([*models, "--dataset", str(world / "ds"), "--out", str(out), *rest])
    api = results["api_usage"]
    assert set(api["adapter"]["by_kind"]) == {"api_import", "api_decorator", "api_call"}
    assert api["summary"]["cut"] == 4  # every site of the file: 1 import, 2 decorators, 1 call
    assert api["api_valid_counted"] == 4
    assert 0.0 <= api["adapter"]["overall"]["api_valid"] <= 1.0
    assert "adapter - base" in api["differences"] and set(api["baselines"]) == {
        "previous_line",
        "file_copy",
        "ngram",
    }
    assert [t.kind for t in read_tasks(out.with_name("api_usage_tasks.jsonl"))].count("api_decorator") == 2
