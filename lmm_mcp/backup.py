"""A home folder moved between machines, and the store rebuilt from the archive.

    lmm-mcp export FILE       # one tar.gz: a snapshot of the store, the adapters, the archive, config.toml
    lmm-mcp import FILE       # into a home that holds no memory yet (a new machine)
    lmm-mcp rebuild [--force] # a new store from the archive alone: a lost store, a better parser

The store is copied with SQLite's backup API, so an export taken while a server writes is one consistent
snapshot (a file copy of a WAL database is not). The base model cache (`models/base`), training runs and
logs stay behind: they are downloaded or rebuilt. Rebuild ingests the archive's `.jsonl.gz` copies, which
are read but never archived again; tombstones of forgotten sessions and the user's memory edits carry over
to the new store.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tarfile
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from lmm_mcp.config import Config
from lmm_mcp.privacy import emit
from lmm_mcp.store import SCHEMA_VERSION, connect, write_transaction

FORMAT = 1
MANIFEST, STORE = "manifest.json", "store.db"
_SKIPPED_MODELS = ("base",)  # the base model cache: large, and fetched again where it is missing


class BackupError(ValueError):
    """An export or import that cannot go ahead; the message says why and what to do."""


# ----------------------------------------------------------------------------------------- export


def export_home(cfg: Config, dest: Path) -> dict[str, Any]:
    """Write the home's store (a consistent snapshot), adapters, archive and config to `dest` (tar.gz)."""
    if not cfg.db_path.exists():
        raise BackupError(f"no store at {cfg.db_path}: nothing to export")
    dest = dest.expanduser().resolve()
    if dest.is_relative_to(cfg.home.resolve()):
        raise BackupError(f"{dest} is inside the home folder it exports: write it elsewhere")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".lmm-export-") as tmp:
        snapshot = Path(tmp) / STORE
        schema = _snapshot(cfg, snapshot)
        manifest = {
            "format": FORMAT,
            "home": str(cfg.home),  # as the store wrote its paths; and resolved, as it read them
            "home_resolved": str(cfg.home.resolve()),
            "schema": schema,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        (Path(tmp) / MANIFEST).write_bytes(orjson.dumps(manifest))
        part = Path(tmp) / "export.tar.gz"
        with tarfile.open(part, "w:gz", compresslevel=3) as tar:
            tar.add(Path(tmp) / MANIFEST, MANIFEST)
            tar.add(snapshot, STORE)
            for name in ("config.toml", "archive", "models"):
                if (cfg.home / name).exists():
                    tar.add(cfg.home / name, name, filter=_exported)
        os.replace(part, dest)
    return {**manifest, "file": str(dest), "bytes": dest.stat().st_size}


def _snapshot(cfg: Config, target: Path) -> int:
    source = connect(cfg.db_path, cfg.busy_timeout_ms)
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)  # one read transaction: what committed before it, nothing half-written
        return copy.execute("PRAGMA user_version").fetchone()[0]
    finally:
        copy.close()
        source.close()


def _exported(member: tarfile.TarInfo) -> tarfile.TarInfo | None:
    parts = Path(member.name).parts
    if parts[:1] == ("models",) and len(parts) > 1 and parts[1] in _SKIPPED_MODELS:
        return None
    if any(p.startswith((".tmp-", ".del-")) for p in parts):  # a version half-published or half-pruned
        return None
    return member


# ----------------------------------------------------------------------------------------- import


def import_home(cfg: Config, source: Path) -> dict[str, Any]:
    """Unpack an export into this home, which must hold no memory yet; paths under the old home's archive
    are rewritten to this one's."""
    _check_empty(cfg)
    cfg.home.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cfg.home, prefix=".lmm-import-") as tmp:
        unpacked = Path(tmp)
        manifest = _unpack(source, unpacked)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{cfg.db_path}{suffix}").unlink(missing_ok=True)
        os.replace(unpacked / STORE, cfg.db_path)
        for name in ("archive", "models"):
            if (unpacked / name).exists():
                if (cfg.home / name).exists():
                    shutil.rmtree(cfg.home / name)  # empty: _check_empty said so
                os.replace(unpacked / name, cfg.home / name)
        config_note = _place_config(cfg, unpacked / "config.toml")
    moved = _rehome(cfg, manifest)
    return {
        "file": str(source),
        "from_home": manifest["home"],
        "paths_rewritten": moved,
        "config": config_note,
    }


def _check_empty(cfg: Config) -> None:
    if cfg.db_path.exists():
        conn = connect(cfg.db_path, cfg.busy_timeout_ms)
        try:
            sessions = conn.execute("SELECT count(*) FROM sessions").fetchone()[0]
        finally:
            conn.close()
        if sessions:
            raise BackupError(
                f"{cfg.home} already holds {sessions} sessions: import into a new home (--home DIR)"
            )
    for name in ("archive", "models/versions"):
        folder = cfg.home / name
        if folder.is_dir() and any(folder.iterdir()):
            raise BackupError(f"{folder} is not empty: import into a new home (--home DIR) or move it away")


def _unpack(source: Path, into: Path) -> dict[str, Any]:
    try:
        with tarfile.open(source, "r:*") as tar:
            for member in tar.getmembers():
                top = Path(member.name).parts[:1]
                if top not in ((MANIFEST,), (STORE,), ("config.toml",), ("archive",), ("models",)):
                    raise BackupError(f"{source}: unexpected entry {member.name!r}; not an lmm-mcp export")
            tar.extractall(into, filter="data")  # no absolute paths, no '..', no links out
    except (tarfile.TarError, OSError) as e:
        raise BackupError(f"cannot read {source}: {e}") from e
    try:
        manifest = orjson.loads((into / MANIFEST).read_bytes())
    except (OSError, orjson.JSONDecodeError) as e:
        raise BackupError(f"{source} has no readable {MANIFEST}; not an lmm-mcp export") from e
    if manifest.get("format") != FORMAT or not (into / STORE).is_file():
        raise BackupError(f"{source}: export format {manifest.get('format')!r} unknown, or no store in it")
    if not isinstance(manifest.get("schema"), int) or manifest["schema"] > SCHEMA_VERSION:
        raise BackupError(f"{source} holds a store of schema {manifest.get('schema')}: upgrade lmm-mcp first")
    return manifest


def _place_config(cfg: Config, imported: Path) -> str:
    if not imported.exists():
        return "none exported"
    target = cfg.home / "config.toml"
    if not target.exists():
        os.replace(imported, target)
        return "imported"
    kept = cfg.home / "config.imported.toml"
    os.replace(imported, kept)
    return f"this home's config.toml kept; the exported one is {kept}"


def _rehome(cfg: Config, manifest: dict[str, Any]) -> int:
    """Point the store's archive paths (written on the old machine) at this home's archive: the paths it
    wrote (under the home as configured) and the paths it read (resolved)."""
    moves = {
        str(Path(manifest["home"]) / "archive"): str(cfg.archive_dir),
        str(Path(manifest.get("home_resolved") or manifest["home"]) / "archive"): str(
            cfg.archive_dir.resolve()
        ),
    }
    conn = connect(cfg.db_path, cfg.busy_timeout_ms)
    n = 0
    try:
        with write_transaction(conn):
            for old, new in moves.items():
                if old == new:
                    continue
                like = old.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "/%"
                for table, column in (
                    ("files", "archive_path"),
                    ("files", "path"),
                    ("sessions", "file_path"),
                ):
                    n += conn.execute(
                        f"UPDATE {table} SET {column} = ? || substr({column}, ?)"
                        f" WHERE {column} LIKE ? ESCAPE '\\'",
                        (new, len(old) + 1, like),
                    ).rowcount
        return n
    finally:
        conn.close()


# ----------------------------------------------------------------------------------------- rebuild


def rebuild(cfg: Config, *, force: bool = False, embed: bool = True) -> dict[str, Any]:
    """A new store from the archive alone. An existing store with sessions is replaced only with `force`
    (it is kept beside as `store.db.replaced`); its tombstones and memory edits carry over."""
    from lmm_mcp.app import App

    if not cfg.archive_dir.is_dir():
        raise BackupError(f"no archive at {cfg.archive_dir}: nothing to rebuild from")
    forgotten, edits = _set_aside(cfg, force)
    with App.open(cfg) as app:
        with write_transaction(app.conn):
            app.conn.executemany("INSERT OR IGNORE INTO forgotten(session_id, at) VALUES (?, ?)", forgotten)
            app.conn.executemany(
                "INSERT OR IGNORE INTO memory_edits(key, action, text, at) VALUES (?, ?, ?, ?)", edits
            )
        report = app.ingest([cfg.archive_dir], embed=embed)
    return report.as_dict()


def _set_aside(cfg: Config, force: bool) -> tuple[list[tuple[str, str]], list[tuple]]:
    """Move an existing store out of the way; return its tombstones and memory edits."""
    if not cfg.db_path.exists():
        return [], []
    conn = connect(cfg.db_path, cfg.busy_timeout_ms)
    try:
        sessions = conn.execute("SELECT count(*) FROM sessions").fetchone()[0]
        if sessions and not force:
            raise BackupError(
                f"{cfg.db_path} holds {sessions} sessions: stop the servers using it and pass --force to "
                "replace it (it is kept as store.db.replaced)"
            )
        forgotten = conn.execute("SELECT session_id, at FROM forgotten").fetchall()
        edits = conn.execute("SELECT key, action, text, at FROM memory_edits").fetchall()
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    os.replace(cfg.db_path, cfg.db_path.with_name(STORE + ".replaced"))
    for suffix in ("-wal", "-shm"):
        Path(f"{cfg.db_path}{suffix}").unlink(missing_ok=True)
    return forgotten, edits


# ----------------------------------------------------------------------------------------- CLI


def register(sub: Any, common: Any) -> None:
    p = sub.add_parser("export", parents=[common], help="write the store, adapters and archive to one file")
    p.add_argument("file", type=Path, help="the .tar.gz to write")
    p.set_defaults(run=cmd_export)
    p = sub.add_parser("import", parents=[common], help="unpack an export into a home without memory yet")
    p.add_argument("file", type=Path, help="a file `lmm-mcp export` wrote")
    p.set_defaults(run=cmd_import)
    p = sub.add_parser("rebuild", parents=[common], help="recreate the store from the archive alone")
    p.add_argument("--force", action="store_true", help="replace a store that holds sessions")
    p.add_argument("--no-embed", action="store_true", help="skip embedding (search falls back to BM25)")
    p.set_defaults(run=cmd_rebuild)


def cmd_export(cfg: Config, args: Any) -> int:
    doc = export_home(cfg, args.file)
    emit(args.json, doc, f"exported {cfg.home} to {doc['file']} ({doc['bytes']} bytes)")
    return 0


def cmd_import(cfg: Config, args: Any) -> int:
    doc = import_home(cfg, args.file)
    emit(args.json, doc, f"imported {doc['file']} into {cfg.home} (config: {doc['config']})")
    return 0


def cmd_rebuild(cfg: Config, args: Any) -> int:
    doc = rebuild(cfg, force=args.force, embed=not args.no_embed)
    text = (
        f"rebuilt {cfg.db_path} from {doc['files']} archive files: sessions {doc['sessions']}, "
        f"turns {doc['turns']}, chunks {doc['chunks']}, embedded {doc['chunks_embedded']}"
    )
    emit(args.json, doc, text)
    return 0
