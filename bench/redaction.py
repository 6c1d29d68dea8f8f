"""Redaction recall on planted secrets and false-positive rate on clean look-alikes, through the real ingest.

    python bench/redaction.py [--seed 0] [--seeds 1] [--json]

Writes the corpora of bench/secrets_corpus.py, ingests each into a fresh store (redact, parse, archive, store,
FTS5; no embeddings), then looks for every planted value in everything ingest kept: the SQLite file, a dump of
its tables (FTS index included) and the decompressed archive.
  recall  share of planted secrets of which nothing survives (nor half of a long one), per kind and overall
  FP      share of clean values (hashes, UUIDs, base64 images, identifiers) that did not survive intact
"""

from __future__ import annotations

import argparse
import gzip
import json
import sqlite3
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from secrets_corpus import Clean, Planted, fragments, write_clean_corpus, write_secret_corpus  # noqa: E402

from lmm_mcp.config import Config  # noqa: E402
from lmm_mcp.ingest import Ingester, IngestReport  # noqa: E402
from lmm_mcp.store import connect  # noqa: E402


def ingest(root: Path, home: Path) -> tuple[Config, sqlite3.Connection, IngestReport]:
    cfg = Config.load(home=home, claude_dir=root)
    conn = connect(cfg.db_path)
    report = Ingester(cfg, conn).ingest([root])
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return cfg, conn, report


def kept(cfg: Config, conn: sqlite3.Connection) -> dict[str, bytes]:
    """Everything ingest wrote, by place: the database file, its tables as SQL, the archive."""
    archive = b"".join(gzip.decompress(p.read_bytes()) for p in sorted(cfg.archive_dir.rglob("*.gz")))
    return {
        "db-file": cfg.db_path.read_bytes(),
        "db-dump": "\n".join(conn.iterdump()).encode(),
        "archive": archive,
    }


def survivors(planted: list[Planted], places: dict[str, bytes]) -> list[tuple[Planted, str]]:
    """(secret, place) for each planted secret some fragment of which is found in some place."""
    out = []
    for p in planted:
        where = next(
            (name for name, hay in places.items() for f in fragments(p.value) if f.encode() in hay), None
        )
        if where:
            out.append((p, where))
    return out


def damaged(clean: list[Clean], source: bytes, archive: bytes) -> list[Clean]:
    """Clean values of which the archive (the full redacted lines) holds fewer intact copies than the
    transcripts did: each place a value sat in must keep it."""
    return [c for c in clean if archive.count(c.value.encode()) < source.count(c.value.encode())]


def tree_bytes(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*.jsonl")))


def measure(seed: int, work: Path) -> dict:
    planted = write_secret_corpus(work / f"secret-{seed}", seed)
    cfg, conn, report = ingest(work / f"secret-{seed}", work / f"home-secret-{seed}")
    leaks = survivors(planted, kept(cfg, conn))
    conn.close()
    clean = write_clean_corpus(work / f"clean-{seed}", seed)
    cfg, conn, clean_report = ingest(work / f"clean-{seed}", work / f"home-clean-{seed}")
    hurt = damaged(clean, tree_bytes(work / f"clean-{seed}"), kept(cfg, conn)["archive"])
    conn.close()
    return {
        "planted": planted,
        "leaks": leaks,
        "clean": clean,
        "damaged": hurt,
        "secrets_redacted": report.secrets_redacted,
        "clean_redactions": dict(clean_report.secrets_by_kind),
        "errors": report.errors + clean_report.errors,
    }


def summary(runs: list[dict]) -> dict:
    planted = [p for r in runs for p in r["planted"]]
    leaks = [p for r in runs for p, _ in r["leaks"]]
    clean = [c for r in runs for c in r["clean"]]
    hurt = [c for r in runs for c in r["damaged"]]
    by_kind = Counter(p.kind for p in planted)
    leaked_kind = Counter(p.kind for p in leaks)
    clean_kind, hurt_kind = Counter(c.kind for c in clean), Counter(c.kind for c in hurt)
    plain = [c for c in clean if not c.near_keyword]
    return {
        "secrets": len(planted),
        "kinds": len(by_kind),
        "places": sorted({p.where for p in planted}),
        "leaked": len(leaks),
        "recall": 1 - len(leaks) / len(planted),
        "recall_by_kind": {k: 1 - leaked_kind[k] / n for k, n in sorted(by_kind.items())},
        "leaks": [f"{p.kind} in {p.where}: {where}" for r in runs for p, where in r["leaks"]],
        "clean": len(clean),
        "false_positives": len(hurt),
        "fp_rate": len(hurt) / len(clean),
        "fp_rate_plain": sum(not c.near_keyword for c in hurt) / len(plain),
        "fp_by_kind": {k: hurt_kind[k] / n for k, n in sorted(clean_kind.items())},
        "clean_redactions": sum((Counter(r["clean_redactions"]) for r in runs), Counter()),
        "errors": [e for r in runs for e in r["errors"]],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seeds", type=int, default=1, help="corpora to draw, seed, seed+1, ...")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs = [measure(s, Path(tmp)) for s in range(args.seed, args.seed + args.seeds)]
    s = summary(runs)
    if args.json:
        print(json.dumps(s, indent=2))
        return
    print(f"secrets planted  {s['secrets']} of {s['kinds']} kinds in {', '.join(s['places'])}")
    print(f"recall           {s['recall']:.4f}  ({s['leaked']} survived)")
    for line in s["leaks"]:
        print(f"  leaked: {line}")
    weak = {k: v for k, v in s["recall_by_kind"].items() if v < 1}
    print(f"kinds below 1.0  {weak or 'none'}")
    print(f"clean values     {s['clean']}")
    print(f"FP rate          {s['fp_rate']:.4f}  ({s['false_positives']} damaged)")
    print(f"FP rate, no secret-naming word nearby  {s['fp_rate_plain']:.4f}")
    print(f"FP by kind       { {k: round(v, 2) for k, v in s['fp_by_kind'].items() if v} or 'none' }")
    print(f"redactions in the clean corpus  {dict(s['clean_redactions']) or 'none'}")
    if s["errors"]:
        print(f"ingest errors    {s['errors']}")


if __name__ == "__main__":
    main()
