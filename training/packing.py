"""Packing prepared sequences into fixed-length rows in which every sequence attends only to itself.

Used by the mini experiment's pretraining (training/pretrain.py). Fine-tuning gets the same isolation from
TRL's padding-free `bfd` packing; this is the plain-PyTorch equivalent for a hand-written loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Packed:
    """Rows of `max_length` tokens holding whole prepared sequences, each attending only to itself.

    `position_ids` restart at 0 for every sequence (and for a row's padding tail), which transformers reads
    as packed sequences and masks block-diagonally; `labels` are -100 on padding and on each sequence's first
    token, so no sequence is trained to predict the next one's start."""

    input_ids: np.ndarray
    position_ids: np.ndarray
    labels: np.ndarray
    documents: int  # sequences packed
    padding: int  # padding tokens

    def __len__(self) -> int:
        return len(self.input_ids)

    def rows(self, idx) -> dict:
        import torch

        return {
            "input_ids": torch.from_numpy(self.input_ids[idx]),
            "position_ids": torch.from_numpy(self.position_ids[idx]),
            "labels": torch.from_numpy(self.labels[idx]),
        }


def pack_sequences(sequences: list[list[int]], max_length: int, pad_id: int) -> Packed:
    """Greedy in order: a sequence goes into the current row if it fits, else the row is padded and a new
    one starts. Deterministic; every sequence is at most `max_length` (the Preparer's chunks are)."""
    rows_ids, rows_pos, rows_lab, ids, pos, lab, padding = [], [], [], [], [], [], 0

    def close() -> None:
        nonlocal ids, pos, lab, padding
        tail = max_length - len(ids)
        padding += tail
        rows_ids.append(ids + [pad_id] * tail)
        rows_pos.append(pos + list(range(tail)))
        rows_lab.append(lab + [-100] * tail)
        ids, pos, lab = [], [], []

    for seq in sequences:
        if len(seq) > max_length:
            raise ValueError(f"a {len(seq)}-token sequence does not fit max_length={max_length}")
        if len(ids) + len(seq) > max_length:
            close()
        ids += seq
        pos += range(len(seq))
        lab += [-100, *seq[1:]]
    if ids:
        close()
    as_array = lambda rows: np.asarray(rows, dtype=np.int64).reshape(-1, max_length)  # noqa: E731
    return Packed(as_array(rows_ids), as_array(rows_pos), as_array(rows_lab), len(sequences), padding)
