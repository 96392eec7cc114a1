"""Held-out perplexity with a sliding window.

Each document is scored whole and unpacked: `BOS + tokens + EOS`, every token after BOS predicted exactly
once (EOS included: the model must learn to stop). Documents longer than the context are scored with the
standard sliding window: windows start every `stride` tokens, and each window scores only the tokens the
previous window did not, so a token sees at least `context - stride` tokens of left context (the first
window scores all of its tokens). Sums of negative log-likelihood (nats) are kept per document and summed
per group, so every figure is token-weighted and the groups add up to the overall.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from tqdm.auto import tqdm

from training.eval_results import perplexity_metrics


@dataclass(frozen=True)
class Window:
    """Tokens [begin, end) of one document go into the model; the predictions made at positions
    [score_from, end) (of tokens score_from+1 .. end) are scored."""

    doc: int
    begin: int
    end: int
    score_from: int


def sliding_windows(num_tokens: int, context: int, stride: int, doc: int = 0) -> list[Window]:
    """Windows that predict each of tokens 1..num_tokens-1 of a document exactly once.

    Position p predicts token p+1, so a document of N tokens has N-1 predictions, made at positions
    0..N-2; windows tile those positions (the last token is only ever a target, never an input). With
    stride == context the windows are non-overlapping chunks; with a smaller stride a window re-reads
    `context - stride` positions as left context and scores only the positions after the previous window.
    """
    if context < 1:
        raise ValueError(f"context={context}: a window needs at least 1 token")
    if not 1 <= stride <= context:
        raise ValueError(f"stride={stride} must be between 1 and the context ({context})")
    positions = num_tokens - 1
    windows: list[Window] = []
    prev_end = 0
    for begin in range(0, max(positions, 0), stride):
        end = min(begin + context, positions)
        windows.append(Window(doc, begin, end, prev_end))
        prev_end = end
        if end == positions:
            break
    return windows


def encode_documents(tokenizer, texts: Sequence[str]) -> list[list[int]]:
    """`BOS + tokens + EOS` for each text (one batched tokenizer call)."""
    if tokenizer.bos_token_id is None or tokenizer.eos_token_id is None:
        raise ValueError(f"{type(tokenizer).__name__} needs a BOS and an EOS token to score whole documents")
    # verbose=False: documents longer than model_max_length are expected, the sliding window handles them.
    encoded = tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]
    return [[tokenizer.bos_token_id, *ids, tokenizer.eos_token_id] for ids in encoded]


def _batches(windows: list[Window], batch_size: int) -> Iterator[list[Window]]:
    # Longest first: similar lengths share a batch (little padding), and an out-of-memory shows up at once.
    ordered = sorted(windows, key=lambda w: (-(w.end - w.begin), w.doc, w.begin))
    for i in range(0, len(ordered), batch_size):
        yield ordered[i : i + batch_size]


def score_documents(
    model: torch.nn.Module,
    docs: Sequence[Sequence[int]],
    context: int,
    stride: int,
    batch_size: int,
    pad_id: int = 0,
    desc: str = "perplexity",
) -> tuple[list[float], list[int]]:
    """Per-document (summed NLL in nats, number of scored tokens) under `model`, windows batched."""
    windows = [w for i, ids in enumerate(docs) for w in sliding_windows(len(ids), context, stride, i)]
    nll = [0.0] * len(docs)
    counts = [0] * len(docs)
    device = next(model.parameters()).device
    model.eval()
    total = sum(w.end - w.score_from for w in windows)
    with torch.inference_mode(), tqdm(total=total, desc=desc, unit="tok", unit_scale=True) as bar:
        for batch in _batches(windows, batch_size):
            width = max(w.end - w.begin for w in batch)
            input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, w in enumerate(batch):
                input_ids[row, : w.end - w.begin] = torch.tensor(docs[w.doc][w.begin : w.end])
                mask[row, : w.end - w.begin] = 1
            # use_cache=False: nothing is generated, and a cache would only cost memory.
            logits = model(
                input_ids=input_ids.to(device), attention_mask=mask.to(device), use_cache=False
            ).logits
            for row, w in enumerate(batch):
                lo, hi = w.score_from - w.begin, w.end - w.begin
                targets = torch.tensor(docs[w.doc][w.score_from + 1 : w.end + 1], device=device)
                row_logits = logits[row, lo:hi].float()  # log-softmax in float32 even for bf16 models
                loss = torch.nn.functional.cross_entropy(row_logits, targets, reduction="sum")
                nll[w.doc] += loss.item()
                counts[w.doc] += hi - lo
            bar.update(sum(w.end - w.score_from for w in batch))
    return nll, counts


def group_metrics(
    nll: Sequence[float], counts: Sequence[int], records: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """The §4 perplexity block: overall, by_repo and by_language, all token-weighted."""

    def metrics(indices: list[int]) -> dict[str, Any]:
        return perplexity_metrics(
            nll_sum=math.fsum(nll[i] for i in indices),
            tokens=sum(counts[i] for i in indices),
            num_bytes=sum(len(records[i]["content"].encode("utf-8")) for i in indices),
            documents=len(indices),
        )

    block: dict[str, Any] = {"overall": metrics(list(range(len(records))))}
    for group, key in (("by_repo", "repo"), ("by_language", "language")):
        members: dict[str, list[int]] = {}
        for i, record in enumerate(records):
            members.setdefault(record[key], []).append(i)
        block[group] = {name: metrics(members[name]) for name in sorted(members)}
    return block


def document_rows(
    doc_nll: Mapping[str, Sequence[float]], records: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """One row per scored document: where it is from, its size and each model's summed NLL in nats. Written
    beside eval_results.json so that two runs (two seeds, two objectives) are compared per document,
    which the aggregates alone do not allow."""
    return [
        {
            "repo": r["repo"],
            "path": r["path"],
            "bytes": len(r["content"].encode("utf-8")),
            "nats": {name: nll[i] for name, nll in doc_nll.items()},
        }
        for i, r in enumerate(records)
    ]
