"""Helpers every stage shares: atomic writes and folder swaps, git plumbing, id checks, tree-sitter access,
and the schemas of the two tables the project publishes (corpus records, infilling tasks).

This package imports nothing of the project's: `dataset_builder` ← `training` ← `model_card` ← CLIs all
point down to it (tests/test_import_layers.py enforces the order).
"""
