"""`--adapter` as a Hub id with `--adapter-revision` in `evaluate` and `complete` (issue 17, item 5).

Offline: the adapter is put in a Hugging Face cache laid out as the Hub client writes it
(models--ORG--NAME/refs/<rev> → snapshots/<commit>/) and huggingface_hub runs with HF_HUB_OFFLINE, so the real
`snapshot_download` resolves it without a network; Hub-side failures are a download that raises."""

from __future__ import annotations

import shutil
from pathlib import Path

import datasets
import pytest
import torch
from huggingface_hub import constants
from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError
from peft import LoraConfig, get_peft_model

from training import __main__ as training_main
from training.adapter_source import resolve_adapter
from training.complete import complete_main
from training.evaluate import evaluate_main
from training.tiny import build_tiny_model, build_tiny_tokenizer

HUB_ID = "flyte-test/flyte-llama-tiny"
COMMIT = "c0ffee" + "0" * 34
TAG = "v1.0.0-3f2a9c1d"
PY = "from flytekit import task\n\n\n@task\ndef add(a: int, b: int) -> int:\n    return a + b\n" * 3


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """A saved tiny base, a LoRA adapter on it (non-zero, so it changes the output) and a test split."""
    root = tmp_path_factory.mktemp("adapter-source")
    tok = build_tiny_tokenizer()
    base = build_tiny_model(tok, max_position_embeddings=128).eval()
    base.save_pretrained(root / "base")
    tok.save_pretrained(root / "base")
    peft_model = get_peft_model(build_tiny_model(tok, max_position_embeddings=128), LoraConfig(r=4))
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 2.0, generator=torch.Generator().manual_seed(0))
    peft_model.peft_config["default"].base_model_name_or_path = str(root / "base")
    peft_model.save_pretrained(root / "adapter")
    rows = [{"content": PY, "repo": "flytesnacks", "path": f"{i}.py", "language": "python"} for i in range(2)]
    (root / "ds" / "data").mkdir(parents=True)
    datasets.Dataset.from_list(rows).to_parquet(root / "ds" / "data" / "test-00000-of-00001.parquet")
    return root


@pytest.fixture
def hub_cache(world, tmp_path, monkeypatch) -> Path:
    """HF_HUB_CACHE holding HUB_ID at COMMIT, reachable as `main` and as TAG; the Hub itself is offline."""
    repo = tmp_path / "hf-cache" / f"models--{HUB_ID.replace('/', '--')}"
    shutil.copytree(world / "adapter", repo / "snapshots" / COMMIT)
    (repo / "refs").mkdir()
    for ref in ("main", TAG):
        (repo / "refs" / ref).write_text(COMMIT)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return repo


def test_a_local_folder_is_used_as_is(world):
    assert resolve_adapter(str(world / "adapter")) == (world / "adapter", None)


def test_a_hub_id_resolves_to_its_cached_snapshot_and_commit(hub_cache):
    for revision in (None, TAG, COMMIT):
        folder, commit = resolve_adapter(HUB_ID, revision)
        assert folder == hub_cache / "snapshots" / COMMIT and commit == COMMIT


@pytest.mark.parametrize(
    ("adapter", "revision", "error", "message"),
    [
        ("runs/x/no/adapter", None, FileNotFoundError, "no such folder, and not a Hub id"),
        ("flyte-test/not-cached", None, ValueError, "not in the local Hugging Face cache"),
        (HUB_ID, "v9.9.9", ValueError, "not in the local Hugging Face cache"),
    ],
)
def test_a_bad_id_is_one_line_saying_what_to_pass(hub_cache, adapter, revision, error, message):
    with pytest.raises(error, match=message) as info:
        resolve_adapter(adapter, revision)
    assert "\n" not in str(info.value)


def test_hub_side_failures_are_one_line(world, tmp_path):
    def raises(err):
        def download(repo_id, revision):
            raise err

        return download

    response = type("R", (), {"status_code": 404, "headers": {}, "request": None})()
    cases = [
        (RepositoryNotFoundError("404", response=response), "no such model repo on the Hub"),
        (RevisionNotFoundError("404", response=response), "has no revision 'v7' on the Hub"),
    ]
    for err, message in cases:
        with pytest.raises(ValueError, match=message) as info:
            resolve_adapter(HUB_ID, "v7", download=raises(err))
        assert "\n" not in str(info.value)
    (tmp_path / "merged").mkdir()
    with pytest.raises(ValueError, match="not a PEFT adapter repo"):
        resolve_adapter(HUB_ID, download=lambda repo_id, revision: str(tmp_path / "merged"))
    with pytest.raises(ValueError, match="drop --adapter-revision"):
        resolve_adapter(str(world / "adapter"), "v1")


def test_complete_with_a_hub_adapter_equals_the_local_folder(world, hub_cache):
    argv = ["--base", str(world / "base"), "--prefix", "def add(a, b):\n", "--max-new-tokens", "8"]
    local = complete_main([*argv, "--adapter", str(world / "adapter")])
    assert complete_main([*argv, "--adapter", HUB_ID]) == local
    assert complete_main([*argv, "--adapter", HUB_ID, "--adapter-revision", TAG]) == local
    assert local != complete_main(argv)  # the adapter was applied


def test_evaluate_records_the_hub_id_and_the_commit(world, hub_cache, tmp_path):
    common = ["--dataset", str(world / "ds"), "--context", "32", "--stride", "16", "--infill-tasks", "0"]
    common += ["--api-tasks", "0"] if "api_tasks" in _eval_fields() else []
    local = evaluate_main([*common, "--adapter", str(world / "adapter"), "--out", str(tmp_path / "a.json")])
    hub = evaluate_main(
        [*common, "--adapter", HUB_ID, "--adapter-revision", TAG, "--out", str(tmp_path / "h" / "r.json")]
    )
    assert hub["models"]["adapter"] == {"id": HUB_ID, "revision": COMMIT}
    assert hub["perplexity"]["adapter"]["overall"] == local["perplexity"]["adapter"]["overall"]


def test_a_bad_hub_id_is_one_error_line_from_the_cli(world, hub_cache, tmp_path, capsys):
    argv = ["evaluate", "--dataset", str(world / "ds"), "--out", str(tmp_path / "r.json")]
    assert training_main.main([*argv, "--adapter", "flyte-test/nope", "--adapter-revision", "v1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --adapter flyte-test/nope at revision 'v1'") and err.count("\n") == 1
    assert not (tmp_path / "r.json").exists()


def _eval_fields() -> set[str]:
    from training.eval_config import EvalConfig

    return set(EvalConfig.__dataclass_fields__)
