"""Hashes of the code that shapes each cached output, so a cache is invalidated exactly when it must be.

Editing a `--help` string, the summary table or the pin command changes no byte of the corpus, so it must
not re-read every repo; editing a filter or the redactor must. Each cache lists the modules whose code
decides its content (tests/test_cache.py checks both directions).
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

_HERE = Path(__file__).parent

# What `repo_step.process_repo` produces for a repo: read → filters → redact (+ pipeline.py: the cache key
# and the parse check memo).
REPO_STEP_CODE = (
    "gitread.py",
    "filters.py",
    "languages.py",
    "notebooks.py",
    "record.py",
    "redact.py",
    "splits.py",
    "pipeline.py",
    "repo_step.py",
    "../flyte_llama_common/treesitter.py",
)
# What the prepared `datasets` build holds: every repo's records, then the corpus-wide stages.
BUILD_CODE = (*REPO_STEP_CODE, "dedup.py", "dedup_near.py", "hf_builder.py")


@cache
def code_fingerprint(files: tuple[str, ...]) -> str:
    """sha256 over the named source files (paths relative to this package), names included."""
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + b"\0" + (_HERE / name).read_bytes() + b"\0")
    return h.hexdigest()
