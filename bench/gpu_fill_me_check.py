"""Check, on the real Code Llama tokenizer, that the prompts the model card gives users are training's prompt.

Run once where the Hub is reachable (the first GPU/Hub run of the real job), and record the printed result in
docs/EVALUATION.md ("Prompts users send"). The tiny tokenizer's results are pinned by tests/test_fill_me.py;
Code Llama's own tokenizer cannot be downloaded here, so its equality is unchecked until this runs:

    python bench/gpu_fill_me_check.py --tokenizer codellama/CodeLlama-7b-hf --revision <sha>
    python bench/gpu_fill_me_check.py --tokenizer runs/7b/adapter      # the tokenizer staged with an adapter

The tokenizer is saved and loaded again first (what the adapter repo ships). For each prefix/suffix shape it
prints whether (a) training's PSM prompt strips Meta's sentinel cleanly, (b) the plain-text form of the
widget (`model_card.model_card.psm_text`) through the saved tokenizer.json, and (c) transformers'
`tokenizer(prefix + "<FILL_ME>" + suffix)`, give the same ids as training's
`BOS <PRE> enc(prefix) <SUF> enc'(suffix) <MID>`. Exits 1 if (a) or (b) fails for any shape; (c) is reported.
No GPU is needed; it is kept beside the GPU scripts because it belongs to the same first real run.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model_card.model_card import psm_text
from training.fim import psm_prompt_ids

PREFIXES = ("def add(a: int, b: int) -> int:\n", 'def f():\n    """', "if a:\n    return a", "x = ")
SUFFIXES = (" + b\n", "\n    return a + b\n", '"""\n    return 1\n', "return a\n", "")


def check(tokenizer_dir: str) -> list[dict]:
    """One row per (prefix, suffix): which prompt forms equal training's PSM prompt."""
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    rows = []
    server = Tokenizer.from_file(str(Path(tokenizer_dir) / "tokenizer.json"))
    for prefix in PREFIXES:
        for suffix in SUFFIXES:
            tok = AutoTokenizer.from_pretrained(tokenizer_dir)  # fresh: <FILL_ME> changes its normalizer
            row = {"prefix": prefix, "suffix": suffix}
            try:
                expected = psm_prompt_ids(tok, prefix, suffix)
                row["training_prompt"] = True
            except ValueError as exc:  # the sentinel merged with the suffix's first character
                row.update(training_prompt=False, error=str(exc))
                rows.append(row)
                continue
            row["plain_text"] = (
                server.encode(psm_text(prefix, suffix), add_special_tokens=True).ids == expected
            )
            row["fill_me"] = tok(prefix + "<FILL_ME>" + suffix).input_ids == expected
            rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tokenizer", required=True, help="Hub id or local folder of a Code Llama tokenizer")
    parser.add_argument("--revision", default=None, help="Hub revision (a commit SHA) of --tokenizer")
    args = parser.parse_args(argv)
    from transformers import AutoTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        AutoTokenizer.from_pretrained(args.tokenizer, revision=args.revision).save_pretrained(tmp)
        rows = check(tmp)
    for row in rows:
        print(json.dumps(row, ensure_ascii=False), flush=True)
    ok = all(r["training_prompt"] and r["plain_text"] for r in rows)
    fill_me = sum(bool(r.get("fill_me")) for r in rows)
    print(f"plain-text prompt equals training's: {ok}; <FILL_ME> equal in {fill_me} of {len(rows)} shapes")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
