"""The execution benchmark end to end: `evaluate --exec-tasks` on a corpus built from git repos (tiny base and
adapter), its eval_results block, the tasks published as the dataset's `execution` config, and the card."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest
from gitrepos import GitRepo, write_config
from test_execution import EXAMPLE
from test_model_card import eval_results as card_results
from test_model_card import render
from tinyrun import save_base_and_adapter

from dataset_builder.__main__ import main as build_main
from model_card.dataset_card import render_dataset_card
from model_card.model_card import card_metrics, split_front_matter
from training.eval_results import read_results
from training.evaluate import evaluate_main
from training.tiny import build_tiny_tokenizer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("exec-eval")
    train = GitRepo.init(root / "trainrepo")
    train.commit({"flytekit/core/base.py": "def base(a):\n    b = a + 1\n    return b\n"})
    test = GitRepo.init(root / "testrepo")
    test.commit({"examples/example.py": EXAMPLE, "examples/README.md": "# Examples\n"})
    (root / "mirrors").mkdir()
    for repo in (train, test):
        (root / "mirrors" / repo.path.name).symlink_to(repo.path)
    config = write_config(root / "corpus.yaml", {"trainrepo": train.head(), "testrepo": test.head()})
    argv = ["build", "--config", str(config), "--mirrors", str(root / "mirrors"), "--out", str(root / "ds")]
    assert build_main([*argv, "--cache-dir", str(root / "cache"), "--no-progress"]) == 0
    tok = build_tiny_tokenizer([EXAMPLE, "def base(a):\n    return a\n"], vocab_size=400)
    save_base_and_adapter(root, tok, 512)
    out = root / "eval" / "eval_results.json"
    evaluate_main(
        [
            *("--base", str(root / "base"), "--adapter", str(root / "adapter")),
            *("--dataset", str(root / "ds"), "--out", str(out), "--context", "256"),
            *("--infill-tasks", "0", "--api-tasks", "0", "--exec-tasks", "5", "--no-likelihood"),
            *("--exec-max-new-tokens", "8", "--exec-timeout", "40", "--exec-workers", "2"),
            *("--retrieval", "--retrieval-k", "1"),
        ]
    )
    return root, out


def test_execution_block_scores_every_system_and_the_reference_passes(world):
    _, out = world
    results = read_results(out)  # validated
    block = results["execution"]
    assert block["summary"]["candidate_files"] == 1 and block["summary"]["kept_files"] == 1
    # square and greet are scored; `unused` is only called by a workflow without default inputs.
    assert block["summary"]["tasks_scored"] == 2 and block["summary"]["tasks_not_exercised"] == 1
    reference = block["baselines"]["reference"]["overall"]
    assert reference["pass_at_1"] == 1.0 and reference["exact_match"] == 1.0
    assert block["baselines"]["pass_body"]["overall"]["pass_at_1"] == 0.0
    for model in ("base", "adapter"):
        record = block[model]["overall"]
        assert record["tasks"] == 2 and 0.0 <= record["pass_at_1"] <= 1.0
        assert len(record["ci95"]["pass_at_1"]) == 2
    assert "adapter - base" in block["differences"]
    assert block["differences"]["adapter - reference"]["overall"]["pass_at_1"]["value"] <= 0
    assert block["outcomes"]["reference"] == {"pass": 2}
    # With --retrieval, base and adapter are also run with train chunks in the prompt, on the same tasks.
    retrieval = block["retrieval"]
    assert retrieval["base"]["overall"]["tasks"] == retrieval["adapter"]["overall"]["tasks"] == 2
    assert "pass_at_1" in retrieval["differences"]["base+retrieval - base"]["overall"]
    assert results["settings"]["execution"]["isolation"] in ("full", "network", "none")
    tasks = [json.loads(line) for line in (out.parent / "execution_tasks.jsonl").read_text().splitlines()]
    assert [t["function"] for t in tasks if t["excluded"] is None] != []
    assert {t["function"] for t in tasks} == {"square", "greet", "unused"}
    assert all(json.loads(t["reference_outputs"]) == {"wf": 49, "hello": "hello flyte"} for t in tasks)
    outputs = [json.loads(x) for x in (out.parent / "infilling_outputs.jsonl").read_text().splitlines()]
    assert {(o["model"], o["benchmark"]) for o in outputs} >= {
        ("adapter", "execution"),
        ("base", "execution"),
    }


def test_execution_tasks_become_the_datasets_execution_config(world, tmp_path):
    root, out = world
    results = json.loads(out.read_text())
    folder = tmp_path / "published"
    manifest = _add_execution_only(root / "ds", out, results, folder)
    assert manifest["execution"]["tasks"] == 3
    assert manifest["execution"]["settings"]["survey"]["kept_files"] == 1
    rows = datasets.load_dataset(str(folder), "execution", split="test")
    assert sorted(rows["function"]) == ["greet", "square", "unused"]
    card = (folder / "README.md").read_text()
    assert "## Flyte execution benchmark (`execution` config)" in card
    assert 'load_dataset("' in card and '"execution", split="test"' in card


def _add_execution_only(ds: Path, out: Path, results: dict, folder: Path) -> dict:
    """The `execution` config alone, through the same add_infilling_config the CLI uses."""
    from dataset_builder.infilling_config import EXEC_CONFIG_NAME, add_infilling_config

    settings = {"survey": results["execution"]["summary"], "execution": results["settings"]["execution"]}
    return add_infilling_config(
        ds,
        out.parent / "execution_tasks.jsonl",
        settings,
        render_card=render_dataset_card,
        out=folder,
        config_name=EXEC_CONFIG_NAME,
    )


def test_the_card_shows_execution_and_indexes_the_adapters_pass_rate(world):
    _, out = world
    results = card_results() | {"execution": read_results(out)["execution"]}
    text = render(results)
    assert "### Flyte execution" in text
    assert "| the original body (harness check) | 2 | 1.000" in text
    assert "| baseline: the body is `pass` | 2 | 0.000" in text
    metrics = card_metrics(split_front_matter(text))
    assert metrics["Execution pass@1"] == results["execution"]["adapter"]["overall"]["pass_at_1"]
