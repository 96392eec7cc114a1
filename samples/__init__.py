"""Small Flyte-style sample repos that ship with the project (the embedded offline default).

The file trees live in ``samples/repos/<name>/``; :func:`samples.make_repos.make_sample_repos` turns each
into a git repo with one deterministic commit, so the corpus builder can pin and read them exactly as it
reads the nine real Flyte repos. See ``samples/README.md`` for what is planted in them and why.
"""

from samples.make_repos import SAMPLES, SampleRepo, make_sample_repos, samples_pins

__all__ = ["SAMPLES", "SampleRepo", "make_sample_repos", "samples_pins"]
