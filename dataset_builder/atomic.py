"""Move a finished folder into place so readers never see a half-written one (shared by every stage)."""

from __future__ import annotations

import shutil
from pathlib import Path


def replace_dir(new: Path, target: Path) -> None:
    """Swap the complete folder `new` into `target` with renames on the same filesystem.

    An existing `target` is renamed aside first and deleted only after `new` is in place, so a crash at any
    point leaves either the old folder or the new one at `target` (or the old one beside it), never a mix.
    """
    new, target = Path(new), Path(target)
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{new.name}")
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
    new.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
