"""`python -m training complete`: completion and infill through the CLI function, <FILL_ME> prompts, files,
and bad input. The expected text comes from a hand-written greedy loop over the model's logits."""

from __future__ import annotations

import pytest
import torch
from peft import LoraConfig, get_peft_model

from training.complete import complete_main, split_prompt
from training.fim import fim_tokens, psm_prompt_ids, spm_prompt_ids
from training.infill import decode_middle
from training.tiny import build_tiny_model, build_tiny_tokenizer

PREFIX = "def add(a, b):\n"
SUFFIX = "\n\n@workflow\ndef wf(x: int = 1) -> int:\n"


@pytest.fixture(scope="module")
def tok():
    return build_tiny_tokenizer()


@pytest.fixture(scope="module")
def model(tok):
    return build_tiny_model(tok, max_position_embeddings=128).eval()


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory, tok, model):
    path = tmp_path_factory.mktemp("complete") / "base"
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def _greedy(model, prompt: list[int], stops: list[int], steps: int) -> list[int]:
    new: list[int] = []
    with torch.no_grad():
        for _ in range(steps):
            nxt = int(model(torch.tensor([prompt + new])).logits[0, -1].argmax())
            if nxt in stops:
                break
            new.append(nxt)
    return new


def test_completion_mode(base_dir, model, tok, capsys):
    text = complete_main(["--base", str(base_dir), "--prefix", PREFIX, "--max-new-tokens", "7"])
    prompt = [tok.bos_token_id, *tok.encode(PREFIX, add_special_tokens=False)]
    assert text == decode_middle(tok, _greedy(model, prompt, [tok.eos_token_id], 7))
    assert capsys.readouterr().out.startswith(text)


def test_infill_mode_from_text_files_and_fill_me(base_dir, model, tok, tmp_path, capsys):
    args = ["--base", str(base_dir), "--max-new-tokens", "6"]
    text = complete_main([*args, "--prefix", PREFIX, "--suffix", SUFFIX])
    fim = fim_tokens(tok)
    new = _greedy(model, psm_prompt_ids(tok, PREFIX, SUFFIX), [fim.eot_id, fim.eos_id], 6)
    assert text == decode_middle(tok, new)
    (tmp_path / "head.py").write_text(PREFIX)
    (tmp_path / "tail.py").write_text(SUFFIX)
    from_files = complete_main(
        [*args, "--prefix-file", str(tmp_path / "head.py"), "--suffix-file", str(tmp_path / "tail.py")]
    )
    assert from_files == text
    assert complete_main([*args, "--prompt", PREFIX + "<FILL_ME>" + SUFFIX]) == text
    assert capsys.readouterr().out.count(text) >= 3
    # Suffix first: Code Llama's `<PRE> <SUF>{suf} <MID> {pre}` prompt, the same greedy loop.
    spm = complete_main([*args, "--prefix", PREFIX, "--suffix", SUFFIX, "--mode", "spm"])
    assert spm == decode_middle(
        tok, _greedy(model, spm_prompt_ids(tok, PREFIX, SUFFIX), [fim.eot_id, fim.eos_id], 6)
    )


def test_adapter_changes_the_output(base_dir, tok, tmp_path):
    peft_model = get_peft_model(build_tiny_model(tok, max_position_embeddings=128), LoraConfig(r=4))
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 2.0, generator=torch.Generator().manual_seed(0))
    peft_model.save_pretrained(tmp_path / "adapter")
    args = ["--base", str(base_dir), "--prefix", PREFIX, "--max-new-tokens", "8"]
    assert complete_main([*args, "--adapter", str(tmp_path / "adapter")]) != complete_main(args)


def test_split_prompt():
    assert split_prompt("a<FILL_ME>b") == ("a", "b")
    assert split_prompt("no hole") == ("no hole", None)
    with pytest.raises(ValueError, match="2 <FILL_ME> markers"):
        split_prompt("a<FILL_ME>b<FILL_ME>c")


def test_bad_input_fails_clearly(base_dir, tmp_path):
    with pytest.raises(ValueError, match="drop --suffix"):
        complete_main(["--base", str(base_dir), "--prompt", "a<FILL_ME>b", "--suffix", "c"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"adapter_config\.json not found"):
        complete_main(["--base", str(base_dir), "--adapter", str(tmp_path / "empty"), "--prefix", "x"])
    with pytest.raises(SystemExit):  # argparse: --prefix and --prompt are exclusive
        complete_main(["--base", str(base_dir), "--prefix", "x", "--prompt", "y"])
    with pytest.raises(ValueError, match="pass --base"):
        complete_main(["--prefix", "x"])
