"""Moved to `flyte_llama_common.atomic`; this name stays for modules not yet switched over."""

from flyte_llama_common.atomic import remove_stale, replace_dir, staging_dir

__all__ = ["remove_stale", "replace_dir", "staging_dir"]
