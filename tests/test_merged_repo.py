"""The merged model as its own Hub repo (issue 17, item 12): staged by `model_card.stage --merged` beside the
adapter's folder, loadable from its root by transformers (what vLLM/TGI need), with its own card, and pushed
by `push.py model` like any staged model folder. The base is a tiny Llama from config, saved to a temp
folder; the adapter a LoRA on it with non-zero weights (tests/test_model_card.py `make_run`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from peft import AutoPeftModelForCausalLM
from test_model_card import CODE_LLAMA, make_run  # tests/ is on sys.path (pytest rootdir-relative import)
from test_push import FakeHub
from transformers import AutoModelForCausalLM

import push
from model_card.model_card import card_metrics, fim_usage, split_front_matter
from model_card.publish import PushError, publish
from model_card.stage import StageError, main, merged_dir, stage_model

pytestmark = pytest.mark.slow  # a merge and a staging per module (~10 s on 2 cores)

REPO = "flyte-test/flyte-llama-tiny"
MERGED = f"{REPO}-merged"
TOKENIZER = {"tokenizer.json", "tokenizer_config.json"}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("run"))


@pytest.fixture(scope="module")
def staged(run_dir, tmp_path_factory) -> tuple[Path, Path]:
    """(adapter folder, merged folder), staged as the README says, the base named by its Hub id."""
    out = stage_model(
        run_dir / "adapter",
        run_dir / "eval_results.json",
        tmp_path_factory.mktemp("hub") / "flyte-llama-tiny",
        repo_id=REPO,
        base_model_id=CODE_LLAMA,
        merged_repo_id=MERGED,
    )
    return out, merged_dir(out)


def test_merged_folder_loads_from_its_root_with_the_adapters_logits(run_dir, staged):
    _, merged = staged
    ids = torch.tensor([[1, 5, 6, 7, 8, 9]])
    with torch.no_grad():
        expected = AutoPeftModelForCausalLM.from_pretrained(str(run_dir / "adapter"))(ids).logits
        got = AutoModelForCausalLM.from_pretrained(str(merged))(ids).logits
        base = AutoModelForCausalLM.from_pretrained(str(run_dir / "base"))(ids).logits
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(got, base, atol=1e-3)  # the adapter really is in the merged weights
    assert not (merged / "adapter_config.json").exists() and not any(merged.glob("merged*"))


def test_merged_card_is_a_merge_of_code_llama_with_the_adapters_numbers(staged):
    adapter, merged = staged
    text = (merged / "README.md").read_text()
    meta = split_front_matter(text)
    assert meta["base_model"] == CODE_LLAMA and meta["base_model_relation"] == "merge"
    assert meta["library_name"] == "transformers" and meta["pipeline_tag"] == "text-generation"
    assert "peft" not in meta["tags"] and "lora" not in meta["tags"] and "peft" not in text.split("---")[1]
    assert meta["model-index"][0]["name"] == MERGED.split("/")[-1]
    adapter_meta = split_front_matter((adapter / "README.md").read_text())
    assert card_metrics(meta) == card_metrics(adapter_meta) and card_metrics(meta)
    assert meta["widget"] == adapter_meta["widget"]
    # The same id-level PSM prompt as the adapter's card, from the one shared piece of template.
    assert fim_usage() in text and fim_usage() in (adapter / "README.md").read_text()
    assert "def fim_prompt(tokenizer, prefix: str, suffix: str)" in text
    assert f"https://huggingface.co/{REPO})" in text  # links to the adapter repo
    assert f"vllm serve {MERGED}" in text and 'pipeline("text-generation"' in text
    assert "Inference Provider" in text
    assert json.loads((merged / "version.json").read_text()) == json.loads(
        (adapter / "version.json").read_text()
    )


def test_adapter_card_links_to_the_merged_repo_and_has_no_merged_folder(staged):
    adapter, _ = staged
    text = (adapter / "README.md").read_text()
    assert f"[`{MERGED}`](https://huggingface.co/{MERGED})" in text and f"vllm serve {MERGED}" in text
    assert 'subfolder="merged"' not in text and not (adapter / "merged").exists()


def test_dry_run_of_the_merged_push_lists_its_files_only(staged, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _, merged = staged
    assert (
        push.main(["model", "--folder", str(merged), "--repo-id", MERGED, "--tag", "auto", "--dry-run"]) == 0
    )
    out = capsys.readouterr().out
    listed = {line.split()[1] for line in out.splitlines() if line.startswith("  upload ")}
    on_disk = {p.name for p in merged.iterdir()}
    assert {"config.json", "model.safetensors", "README.md", *TOKENIZER} <= listed == on_disk
    assert "exclude" not in out and "card/folder checks: OK" in out
    version = json.loads((merged / "version.json").read_text())["version"]
    assert f"create_tag({version})" in out


def test_push_is_one_commit_to_the_merged_repo_and_the_adapter_push_retires_merged(staged):
    adapter, merged = staged
    hub = FakeHub()
    publish(merged, MERGED, "model", api=hub, echo=lambda _: None, online_check=lambda: None,
            token_getter=lambda: "hf_x")  # fmt: skip
    assert len(hub.commits) == 1 and {"config.json", "model.safetensors", "README.md"} <= set(hub.files)
    # An adapter repo pushed with the old layout loses its merged/ folder on the next push.
    old = FakeHub()
    old.files["merged/model.safetensors"] = b"old"
    publish(adapter, REPO, "model", api=old, echo=lambda _: None, online_check=lambda: None,
            token_getter=lambda: "hf_x")  # fmt: skip
    deleted = {op.path_in_repo for op in old.commits[0] if not hasattr(op, "path_or_fileobj")}
    assert deleted == {"merged/model.safetensors"} and not any(p.startswith("merged/") for p in old.files)


def test_refusals(staged, run_dir, tmp_path):
    merged = staged[1]
    with pytest.raises(PushError, match=f"staged for {MERGED}"):  # the merged card names its own repo
        publish(merged, "flyte-test/other-merged", "model", dry_run=True, echo=lambda _: None)
    with pytest.raises(StageError, match="its own id"):
        stage_model(
            run_dir / "adapter",
            run_dir / "eval_results.json",
            tmp_path / "x",
            repo_id=REPO,
            merged_repo_id=REPO,
        )
    assert not (tmp_path / "x").exists() and not (tmp_path / "x-merged").exists()
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("config.json", "README.md", "eval_results.json"):
        (bad / name).write_bytes((merged / name).read_bytes())
    problems = publish(bad, MERGED, "model", dry_run=True, echo=lambda _: None).problems
    assert problems and "missing model weights" in problems[0]


def test_stage_cli_merged_stages_both_folders(run_dir, tmp_path, capsys):
    out = tmp_path / "hub" / "flyte-llama-tiny"
    argv = ["--run", str(run_dir), "--repo-id", REPO, "--eval-results", str(run_dir / "eval_results.json")]
    assert main([*argv, "--base-model-id", CODE_LLAMA, "--out", str(out), "--merged"]) == 0
    printed = capsys.readouterr().out
    assert f"staged {out} for {REPO}" in printed and f"staged {out}-merged for {MERGED}" in printed
    assert (out.parent / "flyte-llama-tiny-merged" / "model.safetensors").is_file()
