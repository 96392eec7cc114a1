"""`--set` means the same in every command: repeat it, or give several pairs at once, and all apply."""

from __future__ import annotations

import argparse

import pytest

import job
from dataset_builder.__main__ import parser as dataset_parser
from training.options import train_parser

ARGV = ["--set", "a=1", "b=2", "--set", "c=3"]


@pytest.mark.parametrize(
    "parse",
    [
        lambda argv: dataset_parser().parse_args(["build", *argv]),
        lambda argv: train_parser(argparse.ArgumentParser()).parse_args(argv),
        lambda argv: job.build_parser().parse_args(argv),
    ],
    ids=["dataset_builder", "training", "job"],
)
def test_repeated_set_accumulates(parse):
    assert parse(ARGV).set == ["a=1", "b=2", "c=3"]
    assert parse([]).set == []
