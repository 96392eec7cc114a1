"""Repo-level splits: a repo's role decides train or test; validation is a stable hash share of train.

Splitting by repo (not by random chunk) keeps the held-out repos unseen; hashing (salt, repo, path)
instead of drawing random numbers keeps a file in the same split across corpus versions, so a new
version never moves validation files into training.
"""

from __future__ import annotations

import hashlib

from .config import SplitConfig

_SCALE = 2**64


def validation_score(salt: str, repo: str, path: str) -> float:
    """A uniform number in [0, 1) fixed by (salt, repo, path): the first 8 bytes of a SHA-256."""
    digest = hashlib.sha256(f"{salt}\0{repo}\0{path}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def assign_split(repo_role: str, repo: str, path: str, cfg: SplitConfig) -> str:
    """ "test" for test repos; "validation" for ~validation_fraction of train-repo files; else "train"."""
    if repo_role == "test":
        return "test"
    if repo_role != "train":
        raise ValueError(f"unknown split role {repo_role!r} for repo {repo!r}; expected 'train' or 'test'")
    if validation_score(cfg.salt, repo, path) < cfg.validation_fraction:
        return "validation"
    return "train"
