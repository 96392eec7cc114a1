"""The conftest redirect holds: the libraries that cache see a temp folder, never the home directory."""

from __future__ import annotations

from pathlib import Path


def test_caches_point_into_a_temp_folder_not_home():
    import datasets.config
    import huggingface_hub.constants

    from dataset_builder.config import DEFAULT_CACHE

    home = Path.home().resolve()
    for path in (DEFAULT_CACHE, datasets.config.HF_DATASETS_CACHE, huggingface_hub.constants.HF_HUB_CACHE):
        resolved = Path(path).resolve()
        assert "flyte-llama-tests-" in str(resolved), resolved
        assert not resolved.is_relative_to(home / ".cache"), resolved
