"""The mini experiment's pretraining: documents isolated in packed rows, runs sized in steps/tokens, and
the same seed giving the same weights."""

from __future__ import annotations

import sysconfig
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from training.packing import pack_sequences
from training.pretrain import load_pretrain_config, lr_at, pretrain, total_steps
from training.tiny import build_tiny_model, build_tiny_tokenizer

STDLIB = Path(sysconfig.get_paths()["stdlib"])
SMALL = {
    "stdlib_bytes": 12_000,
    "package_bytes": 0,
    "heldout_files": 1,
    "tiny_tokenizer_chars": 12_000,
    "tiny_vocab_size": 300,
    "tiny_hidden_size": 32,
    "tiny_num_layers": 1,
    "tiny_num_heads": 2,
    "tiny_intermediate_size": 64,
    "max_length": 64,
    "batch_size": 2,
    "max_steps": 3,
    "warmup_steps": 1,
    "logging_steps": 1,
}


def test_pack_sequences_exact_rows():
    packed = pack_sequences([[1, 5, 6], [1, 7], [1, 8, 9, 10]], max_length=5, pad_id=2)
    assert packed.input_ids.tolist() == [[1, 5, 6, 1, 7], [1, 8, 9, 10, 2]]
    assert packed.position_ids.tolist() == [[0, 1, 2, 0, 1], [0, 1, 2, 3, 0]]
    assert packed.labels.tolist() == [[-100, 5, 6, -100, 7], [-100, 8, 9, 10, -100]]
    assert (packed.documents, packed.padding) == (3, 1)
    with pytest.raises(ValueError, match="does not fit max_length=5"):
        pack_sequences([[1] * 6], max_length=5, pad_id=2)


def test_a_packed_document_sees_only_itself():
    tok = build_tiny_tokenizer()
    model = build_tiny_model(tok, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, seed=0).eval()
    a = [tok.bos_token_id, *tok.encode("def f(x):\n    return x\n", add_special_tokens=False)]
    b = [tok.bos_token_id, *tok.encode("class A:\n    pass\n", add_special_tokens=False)]
    packed = pack_sequences([a, b], max_length=len(a) + len(b), pad_id=tok.pad_token_id)
    with torch.no_grad():
        alone = model(input_ids=torch.tensor([b]), use_cache=False).logits[0]
        rows = packed.rows([0])
        isolated = model(input_ids=rows["input_ids"], position_ids=rows["position_ids"], use_cache=False)
        crossed = model(input_ids=rows["input_ids"], use_cache=False)  # positions 0..L-1: attends to a
    torch.testing.assert_close(isolated.logits[0, len(a) :], alone, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(crossed.logits[0, len(a) :], alone, atol=1e-3)


def test_runs_are_sized_in_steps_or_tokens():
    config = load_pretrain_config("mini-pretrain", {**SMALL, "max_steps": 100, "warmup_steps": 5})
    assert total_steps(config) == 100
    tokens = load_pretrain_config("mini-pretrain", {**SMALL, "max_steps": 100, "max_tokens": 1280})
    assert total_steps(tokens) == 10  # 1280 row tokens / (2 rows x 64 tokens)
    # the cosine ends at the run's last step, whichever limit set it
    for cfg in (config, tokens):
        lrs = [lr_at(step, cfg) for step in range(total_steps(cfg) + 1)]
        assert lrs[-1] == pytest.approx(cfg.learning_rate * cfg.min_lr_ratio)
        assert lrs[cfg.warmup_steps :] == sorted(lrs[cfg.warmup_steps :], reverse=True)
    with pytest.raises(ValueError, match="unknown field"):
        load_pretrain_config("mini-pretrain", {"max_minutes": 5})


def test_same_seed_gives_identical_weights(tmp_path):
    root = tmp_path / "lib"  # a few real stdlib files: the run is small and reads no more than it needs
    root.mkdir()
    for name in ("textwrap.py", "heapq.py", "bisect.py", "shlex.py"):
        (root / name).write_text((STDLIB / name).read_text(encoding="utf-8"))
    config = load_pretrain_config("mini-pretrain", SMALL)
    logs = [pretrain(config, tmp_path / name, stdlib_root=root) for name in ("a", "b")]
    first, second = (load_file(tmp_path / name / "model.safetensors") for name in ("a", "b"))
    assert first.keys() == second.keys()
    for key in first:
        assert torch.equal(first[key], second[key]), key
    assert logs[0]["steps"] == logs[1]["steps"] == 3 and logs[0]["stopped_by"] == "max_steps"
    assert [h["loss"] for h in logs[0]["log_history"]] == [h["loss"] for h in logs[1]["log_history"]]
    other = pretrain(load_pretrain_config("mini-pretrain", {**SMALL, "seed": 1}), tmp_path / "c", root)
    assert other["log_history"] != logs[0]["log_history"]
