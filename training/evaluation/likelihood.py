"""Teacher-forced likelihood of the reference middle: the model's negative log-likelihood of `middle <EOT>`
after the infilling prompt, in nats per character (comparable across tokenizers) and per token (`<EOT>`
included). Continuous and low-variance where exact match is 0/1, so small differences between models show.

PSM: prompt `BOS <PRE> prefix <SUF> suffix <MID>`, target the middle encoded with no leading space + `<EOT>`.
SPM: training encodes prefix + middle as one piece after `<MID>`; the target is that piece's tokens after the
longest run it shares with the prefix alone (so a token that straddles the boundary is scored, as trained).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from tqdm.auto import tqdm

from training.fim import encode_piece, fim_tokens, psm_prompt_ids, spm_prompt_ids
from training.infill import left_padded

MODES = ("psm", "spm")


def _common(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def prompt_and_target(tokenizer, prefix: str, middle: str, suffix: str, mode: str) -> tuple[list, list]:
    """(context ids, target ids) of the teacher-forced middle in `mode`."""
    eot = fim_tokens(tokenizer).eot_id
    if mode == "psm":
        return psm_prompt_ids(tokenizer, prefix, suffix), [*encode_piece(tokenizer, middle, False), eot]
    if mode != "spm":
        raise ValueError(f"likelihood mode {mode!r}: use psm or spm")
    head = spm_prompt_ids(tokenizer, "", suffix)
    joint = encode_piece(tokenizer, prefix + middle, leading_space=True)
    keep = _common(joint, encode_piece(tokenizer, prefix, leading_space=True))
    return [*head, *joint[:keep]], [*joint[keep:], eot]


def middle_nll(model, tokenizer, tasks: Sequence, mode: str, batch_size: int = 1, desc: str = "nll") -> list:
    """[(nll nats, target tokens, middle chars)] per task, batched with left padding."""
    pairs = [prompt_and_target(tokenizer, t.prefix, t.middle, t.suffix, mode) for t in tasks]
    order = sorted(range(len(pairs)), key=lambda i: -(len(pairs[i][0]) + len(pairs[i][1])))
    device = next(model.parameters()).device
    out: list = [None] * len(pairs)
    model.eval()
    with (
        torch.inference_mode(),
        tqdm(total=len(pairs), desc=desc, unit="task", disable=len(pairs) < 2) as bar,
    ):
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            ids, mask = left_padded([pairs[i][0] + pairs[i][1] for i in batch], 0)
            keep = max(len(pairs[i][1]) for i in batch) + 1
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            logits = model(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                position_ids=positions.to(device),
                use_cache=False,
                logits_to_keep=keep,
            ).logits.float()
            logprobs = torch.log_softmax(logits[:, :-1], dim=-1)  # position p predicts token p + 1
            for row, i in enumerate(batch):
                target = torch.tensor(pairs[i][1], device=logprobs.device)
                picked = logprobs[row, -len(target) :].gather(-1, target[:, None]).squeeze(-1)
                out[i] = (float(-picked.sum()), len(target), len(tasks[i].middle))
            bar.update(len(batch))
    return out
