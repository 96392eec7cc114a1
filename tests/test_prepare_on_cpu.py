"""`prepare` only tokenizes: a GPU recipe's data can be prepared on a machine without a GPU; `train` still
refuses to start a bf16 GPU recipe there."""

from __future__ import annotations

import argparse

import pytest
import torch

from training.config import recipe_from_args
from training.options import prepare_parser, train_parser

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only behaviour")


def test_gpu_recipe_loads_for_prepare_but_not_for_train():
    args = prepare_parser(argparse.ArgumentParser()).parse_args(
        ["--recipe", "codellama-7b-lora", "--dataset", "some/corpus"]
    )
    config, keys = recipe_from_args(args, data_only=True)
    assert config.max_length > 0 and config.objective in ("fim", "clm") and "use_cpu" not in keys
    train_args = train_parser(argparse.ArgumentParser()).parse_args(
        ["--recipe", "codellama-7b-lora", "--dataset", "d", "--output-dir", "o"]
    )
    with pytest.raises(ValueError, match="no CUDA GPU is visible"):
        recipe_from_args(train_args)
