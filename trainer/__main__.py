"""`python -m trainer`: the training pipeline on a prepared run folder, e.g. on a GPU box.

    lmm-mcp train --prepare-only --home ~/.lmm           # on the machine with the store: writes runs/<run>/data
    accelerate launch -m trainer --home ~/.lmm           # where the GPUs are: CPT, SFT, eval, new version

It resumes the newest unfinished run under `--home` (or `--run DIR`) and trains from its data, so it needs
neither the store nor `lmm_mcp`.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import orjson

from trainer import options
from trainer.atomic import read_json
from trainer.checkpoint import latest_run
from trainer.errors import TrainerError
from trainer.pipeline import PipelineConfig, run_pipeline
from trainer.settings import Progress


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer", description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, required=True, help="the lmm home (runs/ and models/)")
    parser.add_argument("--run", type=Path, help="run folder (default: the newest under HOME/runs)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON document")
    options.add_arguments(
        parser.add_argument_group("training options (default: what the run was prepared with)"),
        PipelineConfig,
    )
    args = parser.parse_args(argv)
    run = args.run or latest_run(args.home)
    if run is None or not (run / "run.json").exists():
        print(
            f"no run folder under {args.home}/runs: run `lmm-mcp train --prepare-only` first", file=sys.stderr
        )
        return 2
    saved = read_json(run / "run.json").get("config")
    cfg = (
        PipelineConfig.from_dict({**saved, "home": str(args.home)})
        if saved
        else PipelineConfig(home=args.home)
    )
    # The run's own settings, less what only mattered where it was prepared, then what was asked here.
    cfg = dataclasses.replace(cfg, prepare_only=False, fresh=False)
    try:
        cfg = options.apply(cfg, options.from_namespace(args, PipelineConfig))
        result = run_pipeline(
            cfg, None, on_progress=_print, log=lambda m: print(m, file=sys.stderr), run_dir=run
        )
    except (TrainerError, ValueError) as e:
        print(f"python -m trainer: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(orjson.dumps(result.as_dict(), default=str).decode())
    else:
        print(f"adapter version: {result.adapter_version}")
    return 0


def _print(p: Progress) -> None:
    if p.val_loss is not None or p.step == p.total_steps or p.step % max(1, p.total_steps // 20) == 0:
        print(orjson.dumps(p.as_dict()).decode(), file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
