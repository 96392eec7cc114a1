"""`complete --context K --index DIR` puts the same retrieved context before the prefix that `evaluate
--retrieval` measured; the expected text comes from a hand-written greedy loop over the model's logits."""

from __future__ import annotations

import pytest
import torch

from training.complete import complete_main
from training.evaluation.crossfile import build_context
from training.evaluation.retrieval import Retriever, build_index, query_text
from training.fim import fim_tokens, psm_prompt_ids
from training.infill import decode_middle
from training.tiny import build_tiny_model, build_tiny_tokenizer

PREFIX = "@task\ndef scale(values: list) -> list:\n    "
SUFFIX = "\n\n@workflow\ndef wf() -> list:\n    return scale(values=[1])\n"
ROWS = [
    {"repo": "flytekit", "path": "a.py", "language": "python", "content": "def scale(v):\n    return v\n"},
    {"repo": "flytekit", "path": "b.py", "language": "python", "content": "def other():\n    return 1\n"},
]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("rag-complete")
    tok = build_tiny_tokenizer()
    model = build_tiny_model(tok, max_position_embeddings=512).eval()
    model.save_pretrained(root / "base")
    tok.save_pretrained(root / "base")
    return root, tok, model, build_index(ROWS, root / "index")


def test_context_is_the_measured_construction(world):
    root, tok, model, index = world
    args = ["--base", str(root / "base"), "--prefix", PREFIX, "--suffix", SUFFIX, "--max-new-tokens", "5"]
    text = complete_main([*args, "--context", "2", "--index", str(index), "--context-tokens", "100"])
    hits = Retriever.load(index).top_k(query_text(PREFIX, SUFFIX), 2)
    context = build_context(tok, [c for c, _ in hits], "python", 100)
    assert context.chunks and context.chunks[0].path == "a.py"
    fim = fim_tokens(tok)
    prompt = psm_prompt_ids(tok, context.text + PREFIX, SUFFIX)
    new: list[int] = []
    with torch.no_grad():
        for _ in range(5):
            nxt = int(model(torch.tensor([prompt + new])).logits[0, -1].argmax())
            if nxt in (fim.eot_id, fim.eos_id):
                break
            new.append(nxt)
    assert text == decode_middle(tok, new)


def test_context_needs_an_index(world):
    root = world[0]
    with pytest.raises(ValueError, match="--context K needs --index DIR"):
        complete_main(["--base", str(root / "base"), "--prefix", "x", "--context", "2"])
