"""Perplexity: sliding windows, a hand computation, token-weighted groups, base vs adapter in one run, the
results file, and the failure paths of `python -m training evaluate`. Tiny models only, nothing downloaded."""

from __future__ import annotations

import json
import math

import datasets
import pytest
import torch
from peft import LoraConfig, get_peft_model

import training.modeling
from training.eval_results import SCHEMA_VERSION, EvalResultsError, read_results, summary_table, write_results
from training.evaluate import (
    encode_documents,
    evaluate_main,
    group_metrics,
    score_documents,
    sliding_windows,
)
from training.tiny import build_tiny_model, build_tiny_tokenizer

PY = (
    "import os\n\n\ndef add(a, b):\n    c = a + b\n    # note\n    if c > 10:\n        return c\n"
    "    return c * 2\n\n\nclass A:\n    def m(self, x):\n"
    "        y = x + 1\n        z = y * 2\n        return z\n"
)
GO = (
    'package main\n\nimport "fmt"\n\nfunc main() {\n\tx := 1\n\tfmt.Println(x)\n'
    "\tif x > 0 {\n\t\tx++\n\t}\n}\n"
)
ROWS = [
    {"content": PY, "repo": "flytesnacks", "path": "a.py", "language": "python"},
    {"content": GO, "repo": "talks", "path": "m.go", "language": "go"},
    {
        "content": "Hello Flyte, ünïcode.\n" * 9,
        "repo": "flytesnacks",
        "path": "README.md",
        "language": "markdown",
    },
    {"content": PY.replace("add", "plus"), "repo": "talks", "path": "b.py", "language": "python"},
]


@pytest.fixture(scope="module")
def tok():
    return build_tiny_tokenizer(["Hello Flyte\n", PY, GO], vocab_size=400)


@pytest.fixture(scope="module")
def model(tok):
    return build_tiny_model(tok, max_position_embeddings=48).eval()


@pytest.fixture(scope="module")
def folders(tmp_path_factory, tok, model):
    """A saved base, a LoRA adapter on it (with non-zero weights, so it changes the model) and a dataset."""
    root = tmp_path_factory.mktemp("eval")
    model.save_pretrained(root / "base")
    tok.save_pretrained(root / "base")
    peft_model = get_peft_model(build_tiny_model(tok, max_position_embeddings=48), LoraConfig(r=4))
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5, generator=torch.Generator().manual_seed(1))
    peft_model.save_pretrained(root / "adapter")
    (root / "ds" / "data").mkdir(parents=True)
    datasets.Dataset.from_list(ROWS).to_parquet(root / "ds" / "data" / "test-00000-of-00001.parquet")
    return root


def test_windows_score_every_prediction_exactly_once():
    for n in (2, 3, 7, 16, 17, 50):
        for context, stride in ((4, 4), (4, 1), (5, 2), (8, 3), (64, 32)):
            windows = sliding_windows(n, context, stride)
            scored = [p for w in windows for p in range(w.score_from, w.end)]
            assert scored == list(range(n - 1))  # positions 0..n-2 predict tokens 1..n-1, each once
            assert windows[0].score_from == windows[0].begin == 0  # the first window scores all it reads
            for w in windows:
                assert 0 < w.end - w.begin <= context
                if w is not windows[0]:
                    assert w.score_from - w.begin >= min(context - stride, w.score_from)


def test_stride_equal_to_context_gives_non_overlapping_chunks(model):
    assert [(w.begin, w.end) for w in sliding_windows(10, 4, 4)] == [(0, 4), (4, 8), (8, 9)]
    ids = list(range(5, 35))
    nll, counts = score_documents(model, [ids], context=8, stride=8, batch_size=2)
    expected = 0.0
    with torch.no_grad():
        for start in range(0, len(ids) - 1, 8):
            chunk = torch.tensor([ids[start : start + 9]])
            logits = model(chunk[:, :-1]).logits[0]
            expected += torch.nn.functional.cross_entropy(logits, chunk[0, 1:], reduction="sum").item()
    assert counts == [len(ids) - 1]
    assert nll[0] == pytest.approx(expected, rel=1e-5)


def test_perplexity_equals_hand_computation(model, tok):
    text = "def add(a, b):\n    return a + b\n"
    (ids,) = encode_documents(tok, [text])
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id  # EOS is scored too
    with torch.no_grad():
        log_probs = torch.log_softmax(model(torch.tensor([ids])).logits[0].double(), dim=-1)
    hand = -sum(log_probs[i, ids[i + 1]].item() for i in range(len(ids) - 1))
    nll, counts = score_documents(model, [ids], context=48, stride=24, batch_size=1)
    assert counts == [len(ids) - 1]
    assert nll[0] == pytest.approx(hand, rel=1e-5)
    m = group_metrics(nll, counts, [{"content": text, "repo": "r", "language": "python"}])["overall"]
    assert m["perplexity"] == pytest.approx(math.exp(hand / (len(ids) - 1)), rel=1e-5)
    assert m["bits_per_byte"] == pytest.approx(hand / math.log(2) / len(text.encode()), rel=1e-5)
    assert (m["tokens"], m["bytes"], m["documents"]) == (len(ids) - 1, len(text), 1)


def test_smaller_stride_scores_the_same_tokens_with_more_context(model, tok):
    docs = encode_documents(tok, [r["content"] for r in ROWS])
    _, counts_chunks = score_documents(model, docs, context=8, stride=8, batch_size=4)
    _, counts_slide = score_documents(model, docs, context=8, stride=3, batch_size=4)
    assert counts_chunks == counts_slide == [len(d) - 1 for d in docs]


def test_batching_and_padding_do_not_change_scores(model, tok):
    docs = encode_documents(tok, [r["content"] for r in ROWS])
    one, _ = score_documents(model, docs, context=16, stride=5, batch_size=1)
    many, _ = score_documents(model, docs, context=16, stride=5, batch_size=7)
    assert many == pytest.approx(one, rel=1e-4)


def test_groups_are_token_weighted_and_add_up(model, tok):
    docs = encode_documents(tok, [r["content"] for r in ROWS])
    nll, counts = score_documents(model, docs, context=16, stride=8, batch_size=4)
    block = group_metrics(nll, counts, ROWS)
    overall = block["overall"]
    assert overall["loss"] == pytest.approx(sum(nll) / sum(counts))
    assert set(block["by_repo"]) == {"flytesnacks", "talks"}
    assert set(block["by_language"]) == {"python", "go", "markdown"}
    for group in ("by_repo", "by_language"):
        parts = block[group].values()
        for key in ("tokens", "bytes", "documents"):
            assert sum(p[key] for p in parts) == overall[key]
        # Token-weighted: the overall loss is the token-weighted mean of the groups' losses, not their mean.
        weighted = sum(p["loss"] * p["tokens"] for p in parts) / overall["tokens"]
        assert weighted == pytest.approx(overall["loss"])
    assert block["by_language"]["python"]["tokens"] == counts[0] + counts[3]


def _evaluate(folders, out, *extra):
    return evaluate_main(
        [
            *("--base", str(folders / "base"), "--dataset", str(folders / "ds"), "--out", str(out)),
            *("--context", "32", "--stride", "16", "--infill-tasks", "4", "--max-new-tokens", "4"),
            *extra,
        ]
    )


def test_base_and_adapter_in_one_run_match_the_bare_base(folders, tmp_path, monkeypatch):
    loads = []
    real = training.modeling.load_base_model
    monkeypatch.setattr(
        training.modeling, "load_base_model", lambda *a, **k: loads.append(a) or real(*a, **k)
    )
    both = _evaluate(folders, tmp_path / "both" / "eval_results.json", "--adapter", str(folders / "adapter"))
    assert len(loads) == 1  # the base is loaded once and serves both passes
    bare = _evaluate(folders, tmp_path / "bare" / "eval_results.json")
    base_ppl, bare_ppl = both["perplexity"]["base"], bare["perplexity"]["base"]
    assert base_ppl["overall"]["perplexity"] == pytest.approx(bare_ppl["overall"]["perplexity"], rel=1e-5)
    assert base_ppl["by_repo"]["talks"]["loss"] == pytest.approx(
        bare_ppl["by_repo"]["talks"]["loss"], rel=1e-5
    )
    assert both["perplexity"]["adapter"]["overall"]["loss"] != pytest.approx(base_ppl["overall"]["loss"])
    assert both["infilling"]["base"] == bare["infilling"]["base"]
    assert "adapter" not in bare["perplexity"] and "adapter" not in bare["models"]

    on_disk = read_results(tmp_path / "both" / "eval_results.json")  # validates schema version 1
    assert on_disk == json.loads(json.dumps(both))
    assert list(on_disk) == [
        "schema_version", "dataset", "models", "settings", "perplexity", "held_out_bits_per_byte", "infilling"
    ]  # fmt: skip
    assert on_disk["settings"]["context_length"] == 32 and on_disk["settings"]["stride"] == 16
    # local paths are recorded relative to the results' folder, never as this machine's absolute paths
    up = f"../../{folders.name}"  # tmp_path/both/ → the module's folder beside tmp_path
    assert on_disk["models"]["adapter"] == {"id": f"{up}/adapter", "revision": None}
    assert on_disk["models"]["base"]["id"] == f"{up}/base"
    assert on_disk["dataset"] == {"id": f"{up}/ds", "revision": None, "split": "test"}
    assert str(tmp_path.parent) not in (tmp_path / "both" / "eval_results.json").read_text()
    tasks = (tmp_path / "both" / "infilling_tasks.jsonl").read_text().splitlines()
    assert len(tasks) == on_disk["infilling"]["base"]["overall"]["tasks"] == 4
    outputs = (tmp_path / "both" / "infilling_outputs.jsonl").read_text().splitlines()
    assert len(outputs) == 8  # 4 tasks x (base, adapter)
    docs = [json.loads(x) for x in (tmp_path / "both" / "heldout_documents.jsonl").read_text().splitlines()]
    for name in ("base", "adapter"):  # the per-document NLLs add up to the aggregate, document by document
        overall = on_disk["perplexity"][name]["overall"]
        assert len(docs) == overall["documents"] and sum(d["bytes"] for d in docs) == overall["bytes"]
        bits = sum(d["nats"][name] for d in docs) / math.log(2) / overall["bytes"]
        assert bits == pytest.approx(overall["bits_per_byte"], rel=1e-9)
    assert {d["repo"] for d in docs} == set(on_disk["perplexity"]["base"]["by_repo"])
    assert {p.name for p in (tmp_path / "both").iterdir()} == {
        "eval_results.json",
        "infilling_tasks.jsonl",
        "infilling_outputs.jsonl",
        "heldout_documents.jsonl",
    }  # no temp files left behind
    assert "adapter" in str(summary_table(on_disk).columns[-2].header)


def test_published_tasks_are_scored_like_the_ones_cut_on_the_fly(folders, tmp_path, monkeypatch):
    """--infill-from reuses a tasks file (or a dataset's `infilling` config): same tasks, same scores."""
    cut = _evaluate(folders, tmp_path / "cut" / "eval_results.json", "--infill-seed", "5")
    tasks = tmp_path / "cut" / "infilling_tasks.jsonl"
    reused = _evaluate(folders, tmp_path / "reused" / "eval_results.json", "--infill-from", str(tasks))
    assert reused["infilling"]["base"] == cut["infilling"]["base"]
    assert (tmp_path / "reused" / "infilling_tasks.jsonl").read_text() == tasks.read_text()
    assert reused["settings"]["infill"] == {
        "tasks_from": "../cut/infilling_tasks.jsonl",
        "num_tasks": 4,
        "max_new_tokens": 4,
        "mode": "psm",
        "scored_tasks": 4,
    }
    assert cut["settings"]["infill"]["seed"] == 5
    spm = _evaluate(
        folders, tmp_path / "spm" / "eval_results.json", "--infill-from", str(tasks), "--infill-mode", "spm"
    )
    assert spm["settings"]["infill"]["mode"] == "spm"
    assert spm["perplexity"] == reused["perplexity"]  # only the infilling prompt changed

    # Tasks from another version of the corpus are refused before any model is run.
    rows = [json.loads(line) for line in tasks.read_text().splitlines()]
    rows[0]["middle"] = rows[0]["middle"].upper() + "#"
    stale = tmp_path / "stale.jsonl"
    stale.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(
        ValueError, match=r"file changed.*--dataset/--dataset-revision the tasks were cut from"
    ):
        _evaluate(folders, tmp_path / "stale" / "eval_results.json", "--infill-from", str(stale))
    assert not (tmp_path / "stale").exists()


def test_missing_split_empty_dataset_and_bad_adapter_fail_clearly(folders, tmp_path):
    out = tmp_path / "eval_results.json"
    with pytest.raises(ValueError, match=r"no split 'validation'.*\['test'\]"):
        _evaluate(folders, out, "--split", "validation")
    empty = tmp_path / "empty"
    (empty / "data").mkdir(parents=True)
    datasets.Dataset.from_list(ROWS).select([]).to_parquet(empty / "data" / "test-00000-of-00001.parquet")
    with pytest.raises(ValueError, match="is empty"):
        evaluate_main(["--base", str(folders / "base"), "--dataset", str(empty), "--out", str(out)])
    (tmp_path / "not_an_adapter").mkdir()
    with pytest.raises(FileNotFoundError, match=r"adapter_config\.json not found"):
        _evaluate(folders, out, "--adapter", str(tmp_path / "not_an_adapter"))
    with pytest.raises(ValueError, match="stride=40"):
        _evaluate(folders, out, "--stride", "40")
    assert list(tmp_path.glob("*.json*")) == []  # nothing half-written


def test_results_validation_rejects_other_schemas(tmp_path):
    good = {
        "schema_version": SCHEMA_VERSION,
        "dataset": {"id": "d", "revision": None, "split": "test"},
        "models": {"base": {"id": "m", "revision": None}},
        "settings": {},
        "perplexity": {
            "base": {
                "overall": {
                    "perplexity": 2.0,
                    "loss": 0.69,
                    "bits_per_byte": 1.0,
                    "tokens": 3,
                    "bytes": 4,
                    "documents": 1,
                }
            }
        },
    }
    write_results(tmp_path / "r.json", good)
    assert read_results(tmp_path / "r.json") == good
    with pytest.raises(EvalResultsError, match="schema_version"):
        write_results(tmp_path / "bad.json", {**good, "schema_version": SCHEMA_VERSION - 1})
    del good["perplexity"]["base"]["overall"]["tokens"]
    with pytest.raises(EvalResultsError, match="lacks 'tokens'"):
        write_results(tmp_path / "bad.json", good)
    assert not (tmp_path / "bad.json").exists()


def test_a_rebuilt_folder_is_read_afresh(tmp_path):
    """datasets caches a local folder by its card: after a rebuild with the same README it served old rows."""
    from training.evaluate import load_split

    folder = tmp_path / "corpus"
    (folder / "data").mkdir(parents=True)
    (folder / "README.md").write_text(
        "---\nconfigs:\n- config_name: default\n  data_files:\n"
        "  - split: test\n    path: data/test-*.parquet\n---\n"
    )
    shard = folder / "data" / "test-00000-of-00001.parquet"
    datasets.Dataset.from_list(ROWS[:1]).to_parquet(shard)
    assert len(load_split(str(folder), "test")) == 1
    datasets.load_dataset(str(folder))  # fill datasets' own cache, as a user would
    datasets.Dataset.from_list(ROWS).to_parquet(shard)
    assert load_split(str(folder), "test")["content"][:] == [r["content"] for r in ROWS]
