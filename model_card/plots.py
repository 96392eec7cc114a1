"""PNG plots for the model card: the loss curve and perplexity per repository, base vs adapter; and the
loss curve as inline SVG for the training task's Flyte Deck (workflows.py).

Uses matplotlib's object API with the Agg canvas (no pyplot, no global state, no display needed).
PNG metadata carries no software version, so the same inputs give the same bytes and an unchanged
plot is skipped by the push.
"""

from __future__ import annotations

import html
import io
from pathlib import Path

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

_PNG_METADATA = {"Software": None}


def _save(fig: Figure, out_path: Path) -> Path:
    out_path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(out_path, format="png", dpi=120, metadata=_PNG_METADATA)
    return out_path


def loss_points(log_history: list[dict]) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """(step, train loss) and (step, eval loss) points of a Trainer log_history."""
    train = [(e["step"], e["loss"]) for e in log_history if "loss" in e and "step" in e]
    evals = [(e["step"], e["eval_loss"]) for e in log_history if "eval_loss" in e and "step" in e]
    return train, evals


def plot_loss_curve(log_history: list[dict], out_path: Path) -> Path | None:
    """Train and eval loss vs optimizer step; None when the log has no loss at all."""
    fig = _loss_figure(log_history)
    return _save(fig, out_path) if fig is not None else None


def loss_curve_html(log_history: list[dict]) -> str | None:
    """The loss curve of `plot_loss_curve` as an HTML fragment with an inline SVG (for a Flyte Deck: one
    self-contained page, no image file to upload), and the last values in words; None without a loss."""
    fig = _loss_figure(log_history)
    if fig is None:
        return None
    FigureCanvasAgg(fig)
    svg = io.StringIO()
    # fonttype "none": labels stay <text> (searchable, crisp) instead of glyph paths.
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "flyte-llama"}):
        fig.savefig(svg, format="svg", metadata={"Date": None, "Creator": None})
    body = svg.getvalue()
    body = body[body.index("<svg") :]  # drop the XML prolog and DOCTYPE: it is embedded in a page
    train, evals = loss_points(log_history)
    last = [
        f"{name} {pts[-1][1]:.4f} at step {pts[-1][0]}"
        for name, pts in (("train loss", train), ("validation loss", evals))
        if pts
    ]
    return f"{body}\n<p>Last: {html.escape('; '.join(last))}.</p>\n"


def _loss_figure(log_history: list[dict]) -> Figure | None:
    train, evals = loss_points(log_history)
    if not train and not evals:
        return None
    fig = Figure(figsize=(6, 3.5))
    ax = fig.add_subplot()
    for points, label, style in ((train, "train loss", "-"), (evals, "validation loss", "o-")):
        if points:
            steps, losses = zip(*points, strict=True)
            ax.plot(steps, losses, style, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats/token)")
    ax.set_title("Training loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def plot_perplexity_by_repo(eval_results: dict, out_path: Path) -> Path | None:
    """Grouped bars of test perplexity per repository for base and adapter; None without per-repo values."""
    ppl = eval_results.get("perplexity") or {}
    series = {
        model: {repo: m["perplexity"] for repo, m in ((ppl.get(model) or {}).get("by_repo") or {}).items()}
        for model in ("base", "adapter")
    }
    repos = sorted(set(series["base"]) | set(series["adapter"]))
    if not repos:
        return None
    fig = Figure(figsize=(max(4.0, 1.2 * len(repos) + 2), 3.5))
    ax = fig.add_subplot()
    present = [m for m in ("base", "adapter") if series[m]]
    width = 0.8 / len(present)
    for i, model in enumerate(present):
        xs = [r + i * width - 0.4 + width / 2 for r, repo in enumerate(repos) if repo in series[model]]
        ys = [series[model][repo] for repo in repos if repo in series[model]]
        bars = ax.bar(xs, ys, width=width, label=model)
        ax.bar_label(bars, fmt="%.3g", fontsize=8, padding=2)  # the values matter more than the heights
    ax.set_xticks(range(len(repos)), repos, rotation=20, ha="right")
    ax.set_ylabel("perplexity (lower is better)")
    ax.set_title("Test perplexity per repository")
    ax.grid(axis="y", alpha=0.3)
    ax.margins(y=0.15)  # room for the value labels
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=len(present), frameon=False)
    fig.tight_layout()
    return _save(fig, out_path)


def render_plots(training_log: dict | None, eval_results: dict, folder: Path) -> list[tuple[str, str]]:
    """Write the plots that the inputs support under folder/plots/; returns [(title, relative path)]."""
    written = []
    loss = plot_loss_curve((training_log or {}).get("log_history") or [], folder / "plots" / "loss_curve.png")
    if loss:
        written.append(("Training and validation loss", "plots/loss_curve.png"))
    repo = plot_perplexity_by_repo(eval_results, folder / "plots" / "perplexity_by_repo.png")
    if repo:
        written.append(("Test perplexity per repository, base vs adapter", "plots/perplexity_by_repo.png"))
    return written
