"""Model card, plots and staging: built from real fixture files that follow docs/ARCHITECTURE.md.

The fixture builders here (`eval_results`, `make_run`) are also used by tests/test_push.py.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
import yaml
from huggingface_hub import ModelCard
from peft import LoraConfig, get_peft_model
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from model_card.model_card import (
    REQUIRED_FIELDS,
    CardError,
    card_metrics,
    check_card_metadata,
    expected_metrics,
    render_model_card,
    split_front_matter,
)
from model_card.plots import loss_points, render_plots
from model_card.stage import stage_model
from training.eval_results import SCHEMA_VERSION

CODE_LLAMA = "codellama/CodeLlama-7b-hf"
DATASET_ID = "flyte-test/flyte-llama-corpus"


def _m(ppl: float, tokens: int) -> dict:
    return {
        "perplexity": ppl,
        "loss": 1.0,
        "bits_per_byte": 0.61,
        "tokens": tokens,
        "bytes": 4 * tokens,
        "documents": 3,
    }


def _i(em: float, es: float, tasks: int) -> dict:
    return {
        "exact_match": em,
        "exact_match_strict": em / 2,
        "edit_similarity": es,
        "valid_fill": None,
        "tasks": tasks,
        "ci95": {"exact_match": [em - 0.05, em + 0.05], "edit_similarity": [es - 0.04, es + 0.04]},
    }


def _d(em: float, es: float, tasks: int) -> dict:
    return {
        "overall": {
            "tasks": tasks,
            "exact_match": {"value": em, "ci95": [em - 0.03, em + 0.03]},
            "edit_similarity": {"value": es, "ci95": [es - 0.02, es + 0.02]},
        }
    }


def eval_results(*, infilling: bool = True, adapter: bool = True, dataset_id: str = DATASET_ID) -> dict:
    """An eval_results.json (the current schema) with distinct values, so a mix-up shows."""
    results = {
        "schema_version": SCHEMA_VERSION,
        "dataset": {"id": dataset_id, "revision": "v1.0.0", "split": "test"},
        "models": {
            "base": {"id": CODE_LLAMA, "revision": None},
            "adapter": {"id": "runs/x/adapter", "revision": None},
        },
        "settings": {"context_length": 4096, "stride": 2048, "batch_size": 4, "dtype": "bfloat16"},
        "perplexity": {
            "base": {
                "overall": _m(3.91, 5000),
                "by_repo": {"flytesnacks": _m(4.11, 3000), "flyte-conference-talks": _m(3.71, 2000)},
                "by_language": {"python": _m(3.51, 4000), "markdown": _m(6.01, 1000)},
            },
            "adapter": {
                "overall": _m(2.93, 5000),
                "by_repo": {"flytesnacks": _m(3.03, 3000), "flyte-conference-talks": _m(2.83, 2000)},
                "by_language": {"python": _m(2.53, 4000), "markdown": _m(5.03, 1000)},
            },
        },
    }
    if infilling:
        results["settings"]["infill"] = {"seed": 0, "num_tasks": 40, "mode": "psm"}
        results["infilling"] = {
            "tasks_file": "infilling_tasks.jsonl",
            "base": {"overall": _i(0.125, 0.5125, 40), "by_kind": {"single_line": _i(0.2, 0.6, 20)}},
            "adapter": {"overall": _i(0.325, 0.7125, 40), "by_kind": {"single_line": _i(0.4, 0.8, 20)}},
            "baselines": {"previous_line": {"overall": _i(0.0625, 0.3125, 40)}},
            "differences": {
                "adapter - base": _d(0.2, 0.2, 40),
                "adapter - previous_line": _d(0.2625, 0.4, 40),
                "base - previous_line": _d(0.0625, -0.01, 40),
            },
            "decontamination": {
                "checked": 47,
                "kept": 40,
                "dropped": {"window_seen": 5, "middle_seen": 2},
                "context_lines": 2,
                "min_middle_chars": 20,
                "against": ["train", "validation"],
                "test_line_overlap": {"lines": 1000, "in_train": 123, "share": 0.123},
            },
        }
    if not adapter:
        results["models"].pop("adapter")
        results["perplexity"].pop("adapter")
        results.get("infilling", {}).pop("adapter", None)
    return results


ADAPTER_CONFIG = {
    "base_model_name_or_path": CODE_LLAMA,
    "revision": None,
    "r": 16,
    "lora_alpha": 32,
    "lora_dropout": 0.05,
    "target_modules": [
        "model.layers.0.self_attn.q_proj",
        "model.layers.1.self_attn.q_proj",
        "model.layers.0.mlp.down_proj",
    ],
}
LOG = {
    "log_history": [{"step": s, "loss": 2.0 - 0.1 * s} for s in range(1, 11)]
    + [{"step": 10, "eval_loss": 1.4}],
    "summary": {
        "global_step": 10,
        "train_tokens": 40960,
        "train_runtime_s": 12.5,
        "hardware": "2x CPU",
        "objective": "fim",
        "fim_rate": 0.9,
        "spm_rate": 0.5,
        "max_length": 4096,
        "dataset": {"id": DATASET_ID, "revision": "v1.0.0"},
    },
}


def render(results: dict | None = None, **kwargs) -> str:
    kwargs = {
        "repo_id": "flyte-test/flyte-llama-lora",
        "adapter_config": ADAPTER_CONFIG,
        "training_log": LOG,
    } | kwargs
    return render_model_card(eval_results=results or eval_results(), **kwargs).content


# ---------------------------------------------------------------- run folder with a real tiny adapter


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    words = [
        "def",
        "task",
        "workflow",
        "flytekit",
        "import",
        "from",
        "return",
        "int",
        "str",
        "x",
        "y",
        "(",
        ")",
        ":",
        "=",
        "+",
        ",",
        ".",
    ]
    vocab = {tok: i for i, tok in enumerate(["<unk>", "<s>", "</s>", *words])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>")


def make_run(root: Path, *, base_id: str | None = None) -> Path:
    """RUN/ as training writes it: base/ (local tiny base), adapter/ (with a pickle and a PEFT README),
    checkpoints/, eval_results.json + infilling_tasks.jsonl. base_id replaces the local base path."""
    torch.manual_seed(0)
    tokenizer = tiny_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
    )
    base = LlamaForCausalLM(config)
    base.save_pretrained(root / "base")
    tokenizer.save_pretrained(root / "base")
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():  # non-zero LoRA B so that merging changes the weights
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    model.peft_config["default"].base_model_name_or_path = base_id or str(root / "base")
    adapter = root / "adapter"
    model.save_pretrained(adapter)  # adapter_config.json + adapter_model.safetensors + PEFT's README.md
    tokenizer.save_pretrained(adapter)
    log = copy.deepcopy(LOG)
    log["summary"]["hardware"] = "CPU"
    (adapter / "training_log.json").write_text(json.dumps(log))
    (adapter / "recipe.yaml").write_text(yaml.safe_dump({"name": "tiny", "learning_rate": 0.001, "seed": 0}))
    (adapter / "training_args.bin").write_bytes(b"\x80\x04pickle")
    (adapter / "optimizer.pt").write_bytes(b"\x80\x04pickle")
    (root / "checkpoints" / "checkpoint-10").mkdir(parents=True)
    (root / "checkpoints" / "checkpoint-10" / "adapter_model.safetensors").write_bytes(b"old")
    (root / "eval_results.json").write_text(json.dumps(eval_results()))
    (root / "infilling_tasks.jsonl").write_text(
        '{"id": 0, "prefix": "def f(", "middle": "x", "suffix": "):"}\n'
    )
    return root


# ---------------------------------------------------------------- card metadata


def test_card_front_matter_has_required_fields_and_widget():
    meta = split_front_matter(render())
    for field in REQUIRED_FIELDS:
        assert meta.get(field), field
    assert meta["base_model"] == CODE_LLAMA
    assert meta["base_model_relation"] == "adapter"
    assert meta["library_name"] == "peft"
    assert meta["pipeline_tag"] == "text-generation"
    assert meta["license"] == "llama2"
    assert meta["datasets"] == [DATASET_ID]
    assert {"flyte", "lora", "fill-in-the-middle"} <= set(meta["tags"])
    # Infilling as plain PSM text, which servers encode to the training prompt (tests/test_fill_me.py).
    assert any(w["text"].startswith("▁<PRE> ") and w["text"].endswith("▁<MID>") for w in meta["widget"])
    assert any("flytekit" in w["text"] for w in meta["widget"])


def test_model_index_equals_eval_results():
    results = eval_results()
    text = render(results)
    metrics = card_metrics(split_front_matter(text))
    # Only the adapter's own numbers: the base model's and the baselines' are in the tables, not the index.
    assert metrics == {
        "Test perplexity": 2.93,
        "Infilling exact match": 0.325,
        "Infilling edit similarity": 0.7125,
    }
    assert metrics == expected_metrics(results)
    for base_value in (3.91, 0.125, 0.5125, 0.0625):
        assert base_value not in metrics.values()
    # huggingface_hub parses it back into EvalResult objects with the dataset pinned
    parsed = ModelCard(text).data.eval_results
    assert {r.metric_value for r in parsed} == set(metrics.values())
    assert {(r.dataset_type, r.dataset_split, r.dataset_revision) for r in parsed} == {
        (DATASET_ID, "test", "v1.0.0")
    }
    configs = {r.metric_name: r.dataset_config for r in parsed}
    assert configs == {
        "Test perplexity": None,
        "Infilling exact match": "infilling",
        "Infilling edit similarity": "infilling",
    }
    assert check_card_metadata(text, results) == []


def test_values_absent_from_results_are_absent_from_card():
    text = render(eval_results(infilling=False))
    metrics = card_metrics(split_front_matter(text))
    assert set(metrics) == {"Test perplexity"}
    assert "### Infilling" not in text and "exact match" not in text

    text = render(eval_results(adapter=False))  # the base model's numbers never enter the index
    assert card_metrics(split_front_matter(text)) == {}

    log = {"summary": {"objective": "clm", "global_step": 3}}  # no hardware, no tokens, no FIM rates
    text = render(training_log=log, recipe={})
    assert "| Optimizer steps | 3 |" in text
    for absent in ("Hardware", "Training tokens seen", "FIM rate", "Learning rate"):
        assert absent not in text


def test_body_reports_recipe_eval_tables_and_pinned_sources():
    manifest = {
        "version": "1.0.0",
        "sources": [
            {
                "name": "flytekit",
                "url": "https://github.com/flyteorg/flytekit",
                "commit_sha": "ab" * 20,
                "split": "train",
                "license": "Apache-2.0",
            }
        ],
    }
    text = render(
        recipe={"learning_rate": 0.0002}, manifest=manifest, plots=[("Loss", "plots/loss_curve.png")]
    )
    assert "| LoRA rank (r) | 16 |" in text and "| LoRA alpha | 32 |" in text
    assert "| LoRA target modules | down_proj, q_proj |" in text
    assert "| Learning rate | 0.0002 |" in text and "| FIM rate | 0.9 |" in text
    assert "| Training tokens seen | 40,960 |" in text and "| Hardware | 2x CPU |" in text
    assert "| flytesnacks | 4.110 | 3.030 |" in text
    assert "| markdown | 6.010 | 5.030 |" in text
    assert "| single_line | 0.200 | 0.400 |" in text
    assert f"`{'ab' * 20}`" in text
    assert "![Loss](plots/loss_curve.png)" in text
    assert 'revision="<tag or commit>"' in text and "AutoPeftModelForCausalLM" in text and "<FILL_ME>" in text


def test_local_dataset_path_is_refused_unless_allowed(tmp_path):
    results = eval_results(dataset_id=str(tmp_path))
    with pytest.raises(CardError, match="--dataset-id ORG/NAME"):
        render(results)
    # an explicit Hub id wins over the local path recorded by the run
    assert split_front_matter(render(results, dataset_id=DATASET_ID))["datasets"] == [DATASET_ID]
    text = render(results, allow_local_dataset=True)
    assert "datasets" not in split_front_matter(text)
    assert "card metadata lacks `datasets`" in check_card_metadata(text, results)


def test_local_base_is_not_presented_as_code_llama(tmp_path):
    text = render(adapter_config=ADAPTER_CONFIG | {"base_model_name_or_path": str(tmp_path)})
    meta = split_front_matter(text)
    assert "base_model" not in meta and "license" not in meta
    assert "Llama 2 Community License" not in text and "local path" in text
    assert "card metadata lacks `base_model`" in check_card_metadata(text, eval_results())


def test_check_card_metadata_catches_changed_results():
    results = eval_results()
    text = render(results)
    changed = copy.deepcopy(results)
    changed["perplexity"]["adapter"]["overall"]["perplexity"] = 2.5
    assert any("differs from" in p for p in check_card_metadata(text, changed))
    assert check_card_metadata("---\nfoo: [\n---\nbody\n", results)[0].startswith("README.md front matter")


def test_fixture_follows_the_eval_results_schema():
    schema = pytest.importorskip("training.eval_results")
    for results in (eval_results(), eval_results(infilling=False), eval_results(adapter=False)):
        schema.validate_results(results)


# ---------------------------------------------------------------- plots


def test_plots_are_written_and_reproducible(tmp_path):
    written = render_plots(LOG, eval_results(), tmp_path / "a")
    assert [p for _, p in written] == ["plots/loss_curve.png", "plots/perplexity_by_repo.png"]
    render_plots(LOG, eval_results(), tmp_path / "b")
    for _, rel in written:
        data = (tmp_path / "a" / rel).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 1000
        assert data == (tmp_path / "b" / rel).read_bytes()  # same inputs, same bytes: the push skips it
    assert loss_points(LOG["log_history"])[1] == [(10, 1.4)]


def test_plots_without_data_are_skipped(tmp_path):
    results = eval_results()
    results["perplexity"]["base"].pop("by_repo")
    results["perplexity"]["adapter"].pop("by_repo")
    assert render_plots({"log_history": [{"step": 1, "learning_rate": 0.1}]}, results, tmp_path) == []
    assert not (tmp_path / "plots").exists()


# ---------------------------------------------------------------- staging


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("run"))


def test_stage_copies_allow_listed_files_and_renders_card(run_dir, tmp_path):
    out = stage_model(
        run_dir / "adapter",
        run_dir / "eval_results.json",
        tmp_path / "hub" / "flyte-llama-tiny",
        repo_id="flyte-test/flyte-llama-tiny",
        base_model_id=CODE_LLAMA,
    )
    names = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert names == [
        "README.md",
        "adapter_config.json",
        "adapter_model.safetensors",
        "eval_results.json",
        "infilling_tasks.jsonl",
        "plots/loss_curve.png",
        "plots/perplexity_by_repo.png",
        "recipe.yaml",
        "tokenizer.json",
        "tokenizer_config.json",
        "training_log.json",
        "version.json",
    ]
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == CODE_LLAMA
    readme = (out / "README.md").read_text()
    assert "| LoRA rank (r) | 4 |" in readme and "| Learning rate | 0.001 |" in readme
    assert check_card_metadata(readme, json.loads((out / "eval_results.json").read_text())) == []
    assert list((tmp_path / "hub").iterdir()) == [out]  # no temp folders left behind


def test_failed_stage_keeps_the_previous_folder(run_dir, tmp_path):
    out = tmp_path / "hub" / "flyte-llama-tiny"
    stage_model(
        run_dir / "adapter", run_dir / "eval_results.json", out, repo_id="flyte-test/flyte-llama-tiny"
    )
    before = (out / "README.md").read_text()
    local = tmp_path / "local-results.json"
    local.write_text(json.dumps(eval_results(infilling=False, dataset_id=str(tmp_path))))
    with pytest.raises(CardError):
        stage_model(run_dir / "adapter", local, out, repo_id="flyte-test/flyte-llama-tiny")
    assert (out / "README.md").read_text() == before
    assert list((tmp_path / "hub").iterdir()) == [out]


def test_framework_versions_come_from_the_run_when_recorded():
    log = copy.deepcopy(LOG)
    log["summary"]["versions"] = {"peft": "9.9.9", "transformers": "8.8.8"}
    text = render(training_log=log)
    assert "- peft 9.9.9\n- transformers 8.8.8\n" in text and "did not record" not in text
    assert "did not record its versions" in render()


def test_staging_twice_gives_identical_bytes(run_dir, tmp_path):
    """No timestamps anywhere: re-staging the same run and pushing again makes no commit."""
    folders = [
        stage_model(
            run_dir / "adapter", run_dir / "eval_results.json", tmp_path / name, repo_id="o/flyte-llama-tiny"
        )
        for name in ("a", "b")
    ]
    files = [{p.relative_to(f): p.read_bytes() for p in f.rglob("*") if p.is_file()} for f in folders]
    assert files[0] == files[1]
