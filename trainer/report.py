"""The evaluation report of a training run: `eval.json`, `eval.md` and `loss.png` in the run folder.

    paths = write_report(run_dir, metrics, {"cpt": cpt_rows, "sft": sft_rows})

`metrics` is what `trainer.evaluate.evaluate` returns, optionally with `"stages"` (per-stage figures such
as `{"sft": {"val_loss": 1.21, "best_val_loss": 1.18, "steps": 300}}`) added by the pipeline. The curves are
the logged rows of each stage: `{"step", "loss", "val_loss"}`, either loss may be None. The plot is drawn
with matplotlib's Agg canvas directly (no pyplot), so it needs no display and touches no global state.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from trainer.evaluate import METRICS

# Report rows: (key in a score dict, label, higher is better?). None: no better direction.
ROWS: tuple[tuple[str, str, bool | None], ...] = (
    *((name, name.replace("_", " "), True) for name in METRICS),
    ("citation_rate", "citation rate", True),
    ("diversity", "diversity (pairwise Jaccard, lower = more diverse)", False),
    ("abstain_accuracy", "abstain accuracy", True),
    ("false_abstain_rate", "false abstain rate", False),
    ("mean_words", "mean words", None),
    ("count", "pairs", None),
)
# Stage figures shown first, in this order, when present (other numbers follow; paths and flags do not).
STAGE_COLUMNS = ("first_val_loss", "best_val_loss", "val_loss", "steps", "tokens", "tokens_per_s")
CATEGORY_COLUMNS = ("keyword_coverage", "specificity", "citation_accuracy", "abstain_accuracy")
DATA_COLUMNS = (  # trainer.pairs.pair_stats per side, and the validation side's targets_seen
    ("pairs", "pairs"),
    ("abstain", "abstain"),
    ("copied", "answers copying a gold excerpt"),
    ("targets_seen", "targets also trained on"),
    ("gold_retrieved", "gold retrieved"),
    ("target_jaccard", "target Jaccard"),
    ("top4_share", "top-4 memories' share"),
)


CURVE_POINTS = 400  # rows of a stage's loss curve a version keeps (a GPU run logs thousands of steps)


def write_report(
    out_dir: Path, metrics: dict[str, Any], curves: dict[str, list[dict[str, Any]]] | None
) -> dict[str, Path]:
    """Write eval.json, eval.md and loss.png into `out_dir` (created if needed); return their paths by kind.
    `curves` None (a version trained before its curves were kept) leaves an existing loss.png as it is."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "eval.json", "markdown": out_dir / "eval.md", "plot": out_dir / "loss.png"}
    _write_text(paths["json"], json.dumps(jsonable(metrics), indent=2, default=str) + "\n")
    _write_text(paths["markdown"], render_markdown(metrics))
    if curves is not None or not paths["plot"].exists():
        plot_losses(curves or {}, paths["plot"])
    return paths


def loss_curve(history: list[dict[str, Any]], most: int = CURVE_POINTS) -> list[dict[str, Any]]:
    """A stage's step history as the version keeps it, to redraw loss.png later (`lmm-mcp eval`): step, train
    and validation loss; every validation, and training points evenly spaced, `most` rows in all at most."""
    rows = [
        {k: r.get(k) for k in ("step", "loss", "val_loss") if _finite(r.get(k))}
        for r in history
        if r.get("step") is not None
    ]
    if len(rows) <= most:
        return rows
    validations = [i for i, r in enumerate(rows) if "val_loss" in r]
    room = max(2, most - len(validations))
    spaced = {round(j * (len(rows) - 1) / (room - 1)) for j in range(room)}
    return [rows[i] for i in sorted(spaced.union(validations))][: max(most, len(validations))]


def jsonable(value: Any) -> Any:
    """`value` with NaN and infinities as None: JSON has no such numbers (a diverged loss must not break it)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def _write_text(path: Path, text: str) -> None:
    # Beside the target and renamed over it: a reader never sees half a report.
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.3f}"
    return str(value)


def _cell(text: Any) -> str:
    """One line of text, safe inside a Markdown table cell."""
    return " ".join(str(text or "").split()).replace("|", "\\|")


def render_markdown(metrics: dict[str, Any]) -> str:
    """The report as Markdown: model vs baseline, per category, stage losses, examples."""
    model = metrics.get("model") or {}
    baseline = metrics.get("baseline") or {}
    lines = ["# Evaluation", ""]
    if metrics.get("version"):
        lines += [f"Adapter version `{metrics['version']}`.", ""]
    if "n" in metrics:
        timing = (
            f" in {metrics['generation_s']:.1f} s"
            if isinstance(metrics.get("generation_s"), int | float)
            else ""
        )
        lines += [f"{metrics['n']} held-out pairs, generated greedily{timing}.", ""]

    if model or baseline:
        lines += ["| metric | model | retrieval-only baseline | better |", "|---|---|---|---|"]
        for key, label, higher in ROWS:
            better = "" if higher is None else ("higher" if higher else "lower")
            lines.append(f"| {label} | {_fmt(model.get(key))} | {_fmt(baseline.get(key))} | {better} |")
        lines.append("")
    verdict = metrics.get("verdict")
    if isinstance(verdict, dict) and "beats_retrieval" in verdict:
        served = (
            "served by `recall_memory`'s auto mode"
            if verdict["beats_retrieval"]
            else "not served in auto mode"
        )
        outcome = "beat" if verdict["beats_retrieval"] else "did not beat"
        lines += [
            f"**Verdict:** the adapter {outcome} retrieval alone ({verdict.get('why', '')}): {served}.",
            "",
        ]

    categories = model.get("by_category") or {}
    if categories:
        base_categories = baseline.get("by_category") or {}
        header = [
            "category",
            "pairs",
            *(f"{c.replace('_', ' ')} (model / baseline)" for c in CATEGORY_COLUMNS),
        ]
        lines += ["## Per category", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for category, row in categories.items():
            base = base_categories.get(category) or {}
            cells = [f"{_fmt(row.get(c))} / {_fmt(base.get(c))}" for c in CATEGORY_COLUMNS]
            lines.append(f"| {_cell(category)} | {_fmt(row.get('count'))} | " + " | ".join(cells) + " |")
        lines.append("")

    stages = metrics.get("stages") or {}
    if stages:
        rows = {name: v if isinstance(v, dict) else {"val_loss": v} for name, v in stages.items()}
        numeric = [
            k for k in dict.fromkeys(k for r in rows.values() for k in r) if _is_number_column(rows, k)
        ]
        columns = [k for k in STAGE_COLUMNS if k in numeric] + [k for k in numeric if k not in STAGE_COLUMNS]
        lines += [
            "## Training stages",
            "",
            "| stage | " + " | ".join(c.replace("_", " ") for c in columns) + " |",
        ]
        lines.append("|" + "---|" * (len(columns) + 1))
        for name, row in rows.items():
            lines.append(f"| {_cell(name)} | " + " | ".join(_fmt(row.get(c)) for c in columns) + " |")
        lines.append("")

    lines += _data_lines(metrics.get("data"))

    examples = metrics.get("examples") or model.get("examples") or []
    if examples:
        lines += ["## Examples", ""]
        for ex in examples:
            category = f" ({ex['category']})" if ex.get("category") else ""
            lines += [f"**Query{category}:** {_cell(ex.get('query'))}", ""]
            lines += [f"- target: {_cell(ex.get('target'))}", f"- model: {_cell(ex.get('output'))}"]
            if "baseline" in ex:
                lines.append(f"- baseline: {_cell(ex.get('baseline'))}")
            lines.append("")
    return "\n".join(lines)


def _data_lines(data: Any) -> list[str]:
    """The training data's statistics per side (`trainer.pairs.pair_stats`): a validation loss is only as
    telling as the validation answers are new (copied from the excerpt, or trained on too, they come cheap)."""
    if not isinstance(data, dict):
        return []
    sides = {side: data[side] for side in ("train", "val") if isinstance(data.get(side), dict)}
    if not sides:
        return []
    lines = [
        "## Training data",
        "",
        "| side | " + " | ".join(label for _, label in DATA_COLUMNS) + " |",
        "|" + "---|" * (len(DATA_COLUMNS) + 1),
    ]
    for side, row in sides.items():
        lines.append(f"| {side} | " + " | ".join(_fmt(row.get(key)) for key, _ in DATA_COLUMNS) + " |")
    return [*lines, ""]


def _is_number_column(rows: dict[str, dict[str, Any]], key: str) -> bool:
    values = [r.get(key) for r in rows.values() if r.get(key) is not None]
    return bool(values) and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def plot_losses(curves: dict[str, list[dict[str, Any]]], path: Path) -> Path:
    """Train and validation loss against step, one panel per stage; a note instead when nothing was logged."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    stages = [(name, rows) for name, rows in curves.items() if rows]
    fig = Figure(figsize=(5 * max(1, len(stages)), 3.6), dpi=100)
    FigureCanvasAgg(fig)
    if not stages:
        ax = fig.add_subplot(1, 1, 1)
        ax.text(0.5, 0.5, "no training curves logged", ha="center", va="center")
        ax.set_axis_off()
    for i, (name, rows) in enumerate(stages, 1):
        ax = fig.add_subplot(1, len(stages), i)
        for key, label, style in (("loss", "train", "-"), ("val_loss", "validation", "o-")):
            points = [(r["step"], r[key]) for r in rows if _finite(r.get(key)) and r.get("step") is not None]
            if points:
                steps, values = zip(*points, strict=True)
                ax.plot(steps, values, style, label=label, markersize=3)
        ax.set_title(name.upper())
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, format="png")
    os.replace(tmp, path)
    return path


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)
