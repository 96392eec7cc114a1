"""The prompts the model card gives users build exactly the PSM prompt training used.

Training's PSM prompt (training/fim.py) is `BOS <PRE> enc(prefix) <SUF> enc'(suffix) <MID>`, as Meta's
`infilling_prompt_tokens`. Checked here with the tokenizer as it is saved beside the adapter (saved and
loaded again, which is what users and servers get), for suffixes that start with a space, a newline, a quote
or are empty, and prefixes of several shapes:
- the card's `fim_prompt` code block, executed as printed in the rendered card;
- the widget's plain-text form through the saved `tokenizer.json` (what a server such as TGI runs) and
  through transformers;
- `tokenizer(prefix + "<FILL_ME>" + suffix)`, which holds only for suffixes starting with a space in
  transformers 5.24: pinned, so that a transformers release that fixes it shows up here.
"""

from __future__ import annotations

import re
import sysconfig
from pathlib import Path

import pytest
from test_model_card import render
from tokenizers import Tokenizer
from transformers import AutoTokenizer

from model_card.model_card import WIDGET, psm_text
from training.fim import psm_prompt_ids
from training.tiny import build_tiny_tokenizer

STDLIB = Path(sysconfig.get_paths()["stdlib"])

PREFIXES = {
    "line end": "def add(a: int, b: int) -> int:\n",
    "docstring open": 'def add(a: int, b: int) -> int:\n    """',
    "mid line": "if a:\n    return a",
    "trailing space": "x = ",
    "indented": "class A:\n    def f(self):\n        ",
}
SUFFIXES = {
    "space": " + b\n",
    "newline": "\n    return a + b\n",
    "quote": '"""\n    return a + b\n',
    "word": "return a + b\n",
    "empty": "",
}
CASES = [(p, s) for p in PREFIXES for s in SUFFIXES]


@pytest.fixture(scope="module")
def saved_tokenizer(tmp_path_factory):
    """A tokenizer trained on real code, saved as training saves it next to the adapter, and loaded."""
    texts = [
        (STDLIB / name).read_text(encoding="utf-8")[:40_000] for name in ("dataclasses.py", "textwrap.py")
    ]
    folder = tmp_path_factory.mktemp("adapter")
    build_tiny_tokenizer(texts, vocab_size=800).save_pretrained(folder)
    return folder


def fresh(folder: Path):
    # A new object per check: transformers' <FILL_ME> path leaves the tokenizer's normalizer changed.
    return AutoTokenizer.from_pretrained(folder)


def card_fim_prompt():
    """The `fim_prompt` function exactly as the rendered model card prints it."""
    card = render()
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", card, re.S) if "def fim_prompt" in b]
    namespace: dict = {}
    exec(block, namespace)  # the card's own code, not a copy of it
    return namespace["fim_prompt"]


@pytest.mark.parametrize("prefix_name,suffix_name", CASES)
def test_card_code_builds_the_training_prompt(saved_tokenizer, prefix_name, suffix_name):
    prefix, suffix = PREFIXES[prefix_name], SUFFIXES[suffix_name]
    tok = fresh(saved_tokenizer)
    assert card_fim_prompt()(tok, prefix, suffix) == psm_prompt_ids(tok, prefix, suffix)


def test_card_code_handles_an_empty_prefix_and_a_leading_space(saved_tokenizer):
    tok, fim_prompt = fresh(saved_tokenizer), card_fim_prompt()
    for prefix, suffix in [("", "x = 1\n"), (" x = ", "1\n"), ("", "")]:
        assert fim_prompt(tok, prefix, suffix) == psm_prompt_ids(tok, prefix, suffix)


@pytest.mark.parametrize("prefix_name,suffix_name", CASES)
def test_plain_text_prompt_through_tokenizer_json(saved_tokenizer, prefix_name, suffix_name):
    """What a server does with the widget's text: the saved tokenizer.json, BOS added, nothing split."""
    prefix, suffix = PREFIXES[prefix_name], SUFFIXES[suffix_name]
    expected = psm_prompt_ids(fresh(saved_tokenizer), prefix, suffix)
    server = Tokenizer.from_file(str(saved_tokenizer / "tokenizer.json"))
    assert server.encode(psm_text(prefix, suffix), add_special_tokens=True).ids == expected
    assert fresh(saved_tokenizer)(psm_text(prefix, suffix)).input_ids == expected


def test_widget_infill_example_is_the_training_prompt(saved_tokenizer):
    (widget,) = [w["text"] for w in WIDGET if "<MID>" in w["text"]]
    prefix, rest = widget.removeprefix("▁<PRE> ").split("▁<SUF>")
    suffix = rest.removesuffix("▁<MID>")
    assert widget == psm_text(prefix, suffix) and "flytekit" in prefix
    server = Tokenizer.from_file(str(saved_tokenizer / "tokenizer.json"))
    assert server.encode(widget).ids == psm_prompt_ids(fresh(saved_tokenizer), prefix, suffix)
    assert not any("<FILL_ME>" in w["text"] for w in WIDGET)  # servers do not split on it


@pytest.mark.parametrize("suffix_name", SUFFIXES)
def test_fill_me_in_transformers_holds_only_for_a_leading_space(saved_tokenizer, suffix_name):
    """transformers 5.24's CodeLlamaTokenizer rebuilds a `Metaspace(prepend_scheme="first")` pre-tokenizer
    on every load, whatever tokenizer.json holds, and its infilling path encodes the suffix as a second
    sequence, which that pre-tokenizer gives a leading "▁"; an empty suffix falls back to plain encoding.
    If this starts failing, transformers changed: the card may go back to `<FILL_ME>`."""
    suffix = SUFFIXES[suffix_name]
    for prefix in PREFIXES.values():
        tok = fresh(saved_tokenizer)
        same = tok(prefix + "<FILL_ME>" + suffix).input_ids == psm_prompt_ids(tok, prefix, suffix)
        assert same == (suffix_name == "space"), (prefix, suffix)


def test_prepared_hub_check_passes_on_the_saved_tokenizer(saved_tokenizer, capsys):
    """bench/gpu_fill_me_check.py (for Code Llama's tokenizer on the first Hub run), here on ours."""
    import importlib.util

    script = Path(__file__).parents[1] / "bench" / "gpu_fill_me_check.py"
    spec = importlib.util.spec_from_file_location("gpu_fill_me_check", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--tokenizer", str(saved_tokenizer)]) == 0
    out = capsys.readouterr().out
    n = len(module.PREFIXES) * len(module.SUFFIXES)
    assert (
        f"plain-text prompt equals training's: True; <FILL_ME> equal in {len(module.PREFIXES)} of {n}" in out
    )
