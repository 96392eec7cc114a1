"""The mini experiment's parts: stdlib pretraining (a few real steps), its recipes, and the test subset."""

from __future__ import annotations

import json

import numpy as np
import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from training.config import load_recipe
from training.data import load_corpus, write_corpus_folder
from training.mini_experiment import build_test_subset
from training.pretrain import (
    corpus_files,
    load_pretrain_config,
    mean_loss,
    pack_documents,
    pretrain,
    stdlib_files,
)
from training.tiny import build_tiny_model

TINY = {
    "stdlib_bytes": 25_000,
    "package_bytes": 10_000,
    "heldout_files": 1,
    "tiny_vocab_size": 320,
    "tiny_hidden_size": 64,
    "tiny_num_layers": 2,
    "tiny_num_heads": 4,
    "tiny_intermediate_size": 128,
    "max_length": 128,
    "batch_size": 4,
    "max_steps": 10,
    "warmup_steps": 2,
    "learning_rate": 0.005,
    "logging_steps": 4,
}


@pytest.mark.slow
def test_pretrain_saves_a_loadable_base_whose_loss_went_down(tmp_path):
    config = load_pretrain_config("mini-pretrain", TINY)
    out = tmp_path / "base"
    log = pretrain(config, out)

    files = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "pretrain_log.json"} <= files
    assert not (tmp_path / "base.tmp").exists()
    saved = json.loads((out / "pretrain_log.json").read_text())
    assert (
        saved["steps"] == 10 and saved["tokens_seen"] == 10 * 4 * 128 and saved["stopped_by"] == "max_steps"
    )
    assert saved["files"]["heldout"] and not set(saved["files"]["heldout"]) & set(saved["files"]["train"])

    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    assert tokenizer.prefix_id is not None and tokenizer.eot_id is not None  # the base can be FIM-trained
    assert model.config.max_position_embeddings == 128
    texts = [text for rel, text in corpus_files(config)[0] if rel in log["files"]["train"]]
    assert any(rel.startswith("site-packages/") for rel in log["files"]["train"])
    packed = pack_documents(tokenizer, texts, config, config.seed)
    init = build_tiny_model(tokenizer, 64, 2, 4, 128, max_position_embeddings=128, seed=config.seed)
    before, after = mean_loss(init, packed, 8), mean_loss(model, packed, 8)
    assert after < before - 0.5, (before, after)

    with pytest.raises(FileExistsError, match="--overwrite"):
        pretrain(config, out)


def test_stdlib_subset_is_deterministic_and_excludes(tmp_path):
    for rel in ("a.py", "pkg/b.py", "pkg/test/c.py", "config-3.11-x/d.py", "big.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(f"x = {rel!r}\n" * (500 if rel == "big.py" else 3))
    config = load_pretrain_config("mini-pretrain", {"max_file_bytes": 1000})
    files = stdlib_files(config, tmp_path)
    assert sorted(rel for rel, _ in files) == ["a.py", "pkg/b.py"]
    assert stdlib_files(config, tmp_path) == files


def test_packed_rows_hold_fim_sequences_each_starting_at_position_zero():
    config = load_pretrain_config("mini-pretrain", {"max_length": 64, "tiny_vocab_size": 300})
    from training.tiny import build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer()
    packed = pack_documents(tokenizer, ["def f(x):\n    return x + 1\n" * 2] * 8, config, 0)
    assert packed.input_ids.shape[1] == 64 and packed.input_ids.dtype == np.int64
    assert tokenizer.prefix_id in packed.input_ids and tokenizer.eos_token_id in packed.input_ids
    starts = packed.position_ids == 0
    # every sequence starts with BOS at position 0, unlabelled; padding is never labelled
    assert (packed.labels[starts] == -100).all()
    assert int((packed.input_ids[starts] == tokenizer.bos_token_id).sum()) == packed.documents == 8


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"fim_rate": 2.0}, "fim_rate=2.0"),
        ({"tiny_hidden_size": 65}, r"tiny_hidden_size=65: must be tiny_num_heads \(3\) times an even head"),
        ({"lr": 1}, "unknown field"),
    ],
)
def test_bad_pretrain_recipe_is_a_clear_error(overrides, message):
    with pytest.raises(ValueError, match=message):
        load_pretrain_config("mini-pretrain", overrides)


def test_mini_lora_recipe_matches_the_base():
    lora = load_recipe("mini-lora")
    pre = load_pretrain_config("mini-pretrain")
    assert not lora.is_tiny and lora.use_cpu and not lora.bf16 and lora.dtype == "float32"
    assert lora.max_length == pre.max_length and (lora.fim_rate, lora.spm_rate) == (
        pre.fim_rate,
        pre.spm_rate,
    )


def test_test_subset_is_a_byte_capped_per_repo_dataset_folder(tmp_path):
    rows = [
        {"content": "x" * 100, "language": "python", "repo": repo, "path": f"f{i}.py"}
        for repo in ("a", "b")
        for i in range(10)
    ]
    write_corpus_folder(tmp_path / "ds", {"train": rows[:1], "test": rows})
    info = build_test_subset(str(tmp_path / "ds"), tmp_path, 350)
    assert info["bytes_by_repo"] == {"a": 300, "b": 300} and info["files"] == 6
    test = load_corpus(str(tmp_path / info["folder"]), None, ("test",))["test"]
    assert len(test) == 6 and set(test["repo"]) == {"a", "b"}
    assert build_test_subset(str(tmp_path / "ds"), tmp_path, 350) == info  # same pick every time
    # another subset gets another folder name (datasets caches local folders by name)
    assert build_test_subset(str(tmp_path / "ds"), tmp_path, 250)["folder"] != info["folder"]


def test_pretrain_recipes_go_through_the_training_loader(tmp_path):
    """One loader: YAML 1.2 numbers, duplicate keys refused, did-you-mean, one-line errors (as training's)."""
    path = tmp_path / "p.yaml"
    path.write_text("learning_rate: 1e-4\ntiny_vocab_size: 300\n")
    assert load_pretrain_config(str(path)).learning_rate == 1e-4
    path.write_text("seed: 1\nseed: 2\n")
    with pytest.raises(ValueError, match="'seed' is given twice"):
        load_pretrain_config(str(path))
    with pytest.raises(ValueError, match=r"'tiny_hiden_size' \(did you mean 'tiny_hidden_size'"):
        load_pretrain_config("mini-pretrain", {"tiny_hiden_size": 8})
    with pytest.raises(ValueError) as err:
        load_pretrain_config("mini-pretrain", {"batch_size": 0, "fim_rate": "x"})
    assert "\n" not in str(err.value) and "fim_rate='x' has the wrong type" in str(err.value)


def test_one_tiny_builder_and_one_set_of_names():
    """The `tiny` fine-tuning recipe and pretraining name the base's shape alike and build it alike."""
    import dataclasses

    from training.pretrain import PretrainConfig
    from training.tiny import TinyModelArguments, build_tiny

    names = {f.name for f in dataclasses.fields(TinyModelArguments)}
    tiny, pre = load_recipe("tiny"), load_pretrain_config("mini-pretrain", TINY)
    assert names <= {f.name for f in dataclasses.fields(type(tiny))}
    assert names <= {f.name for f in dataclasses.fields(PretrainConfig)}
    _, model = build_tiny(["def f(x):\n    return x\n" * 50], pre, pre.max_length, pre.seed)
    shape = model.config
    assert (shape.hidden_size, shape.num_hidden_layers, shape.num_attention_heads) == (64, 2, 4)
    assert (shape.intermediate_size, shape.max_position_embeddings) == (128, 128)
