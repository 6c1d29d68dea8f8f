"""How long `lmm-mcp train` spends building its data before the first step, now against the code before
session 12's changes, in the same run on the same store.

    python bench/data_build.py [--dataset locomo|coding] [--keep DIR] [--json]

It writes the history (LoCoMo's ten conversations, 272 sessions: a month and more of conversation; or the
coding benchmark's 28 sessions), ingests it with embeddings as `lmm-mcp ingest` does, then times
`trainer.pairs.build_dataset` over the store's `History` (every SFT pair retrieves as recall does) twice:

  baseline  the store without the memories_by_chunk index (each hit then scans every memory), no query-vector
            cache in the retriever, no cache of neutralised excerpts: how data was built before
  now       the product as it is

Both write their JSONL to temporary folders; the bench checks that the two datasets are byte for byte the same
(the speedups must not change what is trained on). `--keep DIR` keeps the ingested home under DIR and reuses it
on the next run (the ingest takes 2-3 minutes for LoCoMo on two cores).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.coding_memory.scenario import write_sessions  # noqa: E402
from bench.locomo_recall import DEFAULT_DATA as LOCOMO_DATA  # noqa: E402
from bench.locomo_recall import write_transcripts as write_locomo  # noqa: E402
from lmm_mcp import recall as recall_module  # noqa: E402
from lmm_mcp.app import App  # noqa: E402
from lmm_mcp.config import Config  # noqa: E402
from lmm_mcp.store import connect  # noqa: E402
from trainer.pairs import DataSettings, build_dataset  # noqa: E402

FILES = ("cpt_train.jsonl", "cpt_val.jsonl", "sft_train.jsonl", "sft_val.jsonl")


class _NoCache(dict):
    """A query-vector cache that keeps nothing: the retriever before the cache."""

    def __setitem__(self, key, value) -> None:
        pass


def prepare(dataset: str, root: Path) -> Config:
    """The home under `root`, ingested (with embeddings) unless an earlier run left it there."""
    claude = root / "projects"
    cfg = Config.load(home=root / "home", claude_dir=claude)
    if (root / "ingested").exists():
        return cfg
    if dataset == "locomo":
        write_locomo(json.loads(LOCOMO_DATA.read_text()), claude)
    else:
        write_sessions(claude)
    started = time.perf_counter()
    with App.open(cfg) as app:
        app.ingest(embed=True)
    print(f"ingested {dataset} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    (root / "ingested").write_text("")
    return cfg


def timed_build(cfg: Config, out: Path, *, baseline: bool) -> dict:
    neutralised = recall_module._neutralised
    if baseline:
        recall_module._neutralised = recall_module.neutralise
    try:
        with App.open(cfg) as app:
            history = app.history()
            if baseline:
                history.retriever._vectors = _NoCache()
            started = time.perf_counter()
            manifest = build_dataset(history, out, DataSettings())
            seconds = time.perf_counter() - started
    finally:
        recall_module._neutralised = neutralised
    digest = hashlib.sha256()
    for name in FILES:
        digest.update((out / name).read_bytes())
    return {"seconds": round(seconds, 1), "counts": manifest["counts"], "sha256": digest.hexdigest()[:16]}


def run(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep) if args.keep else Path(tmp) / "history"
        cfg = prepare(args.dataset, root)
        # The baseline's store: a copy without the index (the schema version stays, so it is not rebuilt).
        old = Path(tmp) / "baseline"
        old.mkdir()
        shutil.copy2(cfg.home / "store.db", old / "store.db")
        conn = connect(old / "store.db")
        conn.execute("DROP INDEX IF EXISTS memories_by_chunk")
        conn.close()
        shutil.copytree(cfg.home, old / "home", ignore=shutil.ignore_patterns("store.db*"))
        shutil.move(old / "store.db", old / "home" / "store.db")
        old_cfg = Config.load(home=old / "home", claude_dir=cfg.claude_dir)
        baseline = timed_build(old_cfg, Path(tmp) / "data-baseline", baseline=True)
        now = timed_build(cfg, Path(tmp) / "data-now", baseline=False)
    return {
        "dataset": args.dataset,
        "baseline": baseline,
        "now": now,
        "speedup": round(baseline["seconds"] / max(now["seconds"], 1e-9), 2),
        "identical": baseline["sha256"] == now["sha256"],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="locomo", choices=("locomo", "coding"))
    ap.add_argument("--keep", help="keep the ingested home under this folder, and reuse it")
    ap.add_argument("--json", action="store_true", help="print one JSON document")
    args = ap.parse_args()
    doc = run(args)
    if args.json:
        print(json.dumps(doc, indent=1))
        return 0
    counts = doc["now"]["counts"]
    print(
        f"{args.dataset}: {counts['sessions']} sessions, {counts['memories']} memories -> "
        f"{counts['sft_train']} SFT / {counts['cpt_train']} CPT training rows"
    )
    for name in ("baseline", "now"):
        print(f"  {name:9} {doc[name]['seconds']:7.1f} s   data {doc[name]['sha256']}")
    print(f"  speedup {doc['speedup']}x; the same data: {doc['identical']}")
    return 0 if doc["identical"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
