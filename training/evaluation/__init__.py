"""The evaluation's pure parts: metrics, decontamination, freshness, trivial baselines and intervals.

Nothing here loads a model except `likelihood` (torch); `training/evaluate.py`
composes them (ARCHITECTURE §4).
"""
