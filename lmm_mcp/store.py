"""The memory store: one SQLite file in WAL mode, shared by every lmm-mcp process on the machine.

Holds projects, sessions, turns, retrieval chunks (with an FTS5 index and embedding vectors) and per-file
ingest state. Claude Code starts one server per session, so several processes write here at once: writes go
through short `BEGIN IMMEDIATE` transactions with a long busy timeout, and each transaction leaves the store
consistent on its own (data and the ingest offset that covers it commit together).

The schema version is SQLite's `user_version`; `MIGRATIONS[i]` moves a store from version i to i + 1.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

MIGRATIONS: list[str] = [
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE projects (
        id INTEGER PRIMARY KEY,
        path TEXT NOT NULL UNIQUE,          -- the working directory from the records (never the folder name)
        name TEXT NOT NULL
    );
    CREATE TABLE sessions (
        key TEXT PRIMARY KEY,               -- session id, or '<parent>/agent-<id>' for a sub-agent transcript
        session_id TEXT NOT NULL,           -- Claude Code's session id (the parent's, for a sub-agent)
        agent_id TEXT,
        agent_type TEXT,
        description TEXT,
        parent_tool_use_id TEXT,
        project_id INTEGER REFERENCES projects(id),
        title TEXT,
        git_branch TEXT,
        version TEXT,
        started_at TEXT,
        ended_at TEXT,
        file_path TEXT
    );
    CREATE INDEX sessions_by_session ON sessions(session_id);
    CREATE TABLE turns (
        id INTEGER PRIMARY KEY,
        session_key TEXT NOT NULL REFERENCES sessions(key),
        uuid TEXT NOT NULL,
        parent_uuid TEXT,
        logical_parent_uuid TEXT,
        message_id TEXT,
        role TEXT NOT NULL,
        kind TEXT NOT NULL,
        text TEXT NOT NULL,
        thinking TEXT NOT NULL,
        tool_calls TEXT NOT NULL,           -- JSON [{id, name, input}]
        tool_results TEXT NOT NULL,         -- JSON [{tool_use_id, content, is_error, file_paths}]
        timestamp TEXT,
        cwd TEXT,
        git_branch TEXT,
        version TEXT,
        agent_id TEXT,
        is_sidechain INTEGER NOT NULL,
        subtype TEXT,
        line_no INTEGER,
        UNIQUE (session_key, uuid)
    );
    CREATE INDEX turns_by_message ON turns(session_key, message_id) WHERE message_id IS NOT NULL;
    -- Every record uuid (merged stream blocks, progress records) to the turn that stands for it: keeps the
    -- parentUuid tree walkable and lets a citation name any record.
    CREATE TABLE record_uuids (
        session_key TEXT NOT NULL,
        uuid TEXT NOT NULL,
        turn_id INTEGER NOT NULL,
        PRIMARY KEY (session_key, uuid)
    ) WITHOUT ROWID;
    CREATE TABLE chunks (
        id INTEGER PRIMARY KEY,
        turn_id INTEGER REFERENCES turns(id),
        session_key TEXT NOT NULL,          -- the transcript it came from: neighbours are within one
        session_id TEXT NOT NULL,
        uuid TEXT NOT NULL,
        project_id INTEGER REFERENCES projects(id),
        timestamp TEXT,
        ts REAL,                            -- unix seconds, for time filters
        kind TEXT NOT NULL,
        text TEXT NOT NULL,
        ctx TEXT NOT NULL DEFAULT ''        -- starts of the neighbouring chunks (±2), indexed at lower weight
    );
    CREATE INDEX chunks_by_turn ON chunks(turn_id);
    CREATE INDEX chunks_by_session ON chunks(session_key, id);
    CREATE INDEX chunks_by_project ON chunks(project_id, ts);
    CREATE VIRTUAL TABLE chunks_fts USING fts5(
        text, ctx, content='chunks', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2'
    );
    -- Document frequency per indexed term: retrieval drops words that are in most chunks.
    CREATE VIRTUAL TABLE chunks_vocab USING fts5vocab(chunks_fts, row);
    -- ORDER BY rank: BM25 with the neighbours column at half weight (see lmm_mcp/retrieval.py)
    INSERT INTO chunks_fts(chunks_fts, rank) VALUES ('rank', 'bm25(1.0, 0.5)');
    CREATE TRIGGER chunks_ai AFTER INSERT ON chunks BEGIN
        INSERT INTO chunks_fts(rowid, text, ctx) VALUES (new.id, new.text, new.ctx);
    END;
    CREATE TRIGGER chunks_ad AFTER DELETE ON chunks BEGIN
        INSERT INTO chunks_fts(chunks_fts, rowid, text, ctx) VALUES ('delete', old.id, old.text, old.ctx);
        DELETE FROM vectors WHERE chunk_id = old.id;
        UPDATE meta SET value = value + 1 WHERE key = 'chunk_deletes';
    END;
    CREATE TRIGGER chunks_au AFTER UPDATE OF text, ctx ON chunks BEGIN
        INSERT INTO chunks_fts(chunks_fts, rowid, text, ctx) VALUES ('delete', old.id, old.text, old.ctx);
        INSERT INTO chunks_fts(rowid, text, ctx) VALUES (new.id, new.text, new.ctx);
    END;
    CREATE TABLE vectors (
        chunk_id INTEGER PRIMARY KEY,
        model TEXT NOT NULL,
        vec BLOB NOT NULL                   -- float32, L2-normalised
    );
    -- A cheap change counter: searchers compare it instead of counting vectors on every query.
    CREATE TRIGGER vectors_ai AFTER INSERT ON vectors BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'vector_writes';
    END;
    CREATE TABLE files (
        path TEXT PRIMARY KEY,
        session_key TEXT,
        dev INTEGER, ino INTEGER,
        size INTEGER NOT NULL,              -- file size when last read
        offset INTEGER NOT NULL,            -- byte offset after the last complete line ingested
        line_no INTEGER NOT NULL,
        head_hash TEXT,                     -- hash of the first bytes: same inode rewritten is a new file
        generation INTEGER NOT NULL,        -- bumped when the file is read again from the start
        archive_path TEXT,
        archive_size INTEGER NOT NULL,      -- archive bytes that belong to committed ingests
        lines_skipped INTEGER NOT NULL,
        secrets_redacted INTEGER NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE skipped_lines (
        path TEXT NOT NULL,
        generation INTEGER NOT NULL,
        line_no INTEGER NOT NULL,
        reason TEXT NOT NULL,
        PRIMARY KEY (path, generation, line_no)
    ) WITHOUT ROWID;
    -- Tool calls that read a .env file: their results are blanked even when they arrive in a later ingest.
    CREATE TABLE env_tool_uses (tool_use_id TEXT PRIMARY KEY) WITHOUT ROWID;
    INSERT INTO meta(key, value) VALUES ('chunk_deletes', '0'), ('vector_writes', '0');
    """,
    """
    -- Memories (transcripts.extraction): each session's own extraction, redone when the session grows...
    CREATE TABLE session_memories (
        session_key TEXT PRIMARY KEY,
        turns INTEGER NOT NULL,             -- the session's turn count when it was extracted
        memories TEXT NOT NULL              -- JSON list of transcripts.extraction.Memory
    ) WITHOUT ROWID;
    -- ...and the merged memories over all sessions. Each current one is also a chunk (kind 'memory',
    -- session_key 'memory:<key>'), so BM25 and vectors find it like any other chunk.
    CREATE TABLE memories (
        key TEXT PRIMARY KEY,               -- category:project:subject
        category TEXT NOT NULL,
        text TEXT NOT NULL,
        keywords TEXT NOT NULL,             -- JSON list
        salience REAL NOT NULL,
        project TEXT,                       -- cwd; NULL for a cross-project preference
        superseded_by TEXT,
        attrs TEXT NOT NULL,                -- JSON object
        sources TEXT NOT NULL,              -- JSON list of {session_id, uuid, timestamp, project}
        last_seen TEXT,
        chunk_id INTEGER
    ) WITHOUT ROWID;
    CREATE INDEX memories_by_category ON memories(category, salience);
    """,
    """
    -- Sessions the user told lmm-mcp to forget (lmm_mcp.privacy): ingest never stores them again.
    CREATE TABLE forgotten (session_id TEXT PRIMARY KEY, at TEXT NOT NULL) WITHOUT ROWID;
    """,
    """
    -- Where each chunk's text came from (transcripts.provenance): 'user', 'assistant', 'project' (the
    -- project's own tools), 'third_party' (web, MCP tools, files outside the project) or 'memory'. The hooks
    -- inject only user, assistant and memory chunks; recall marks third-party ones.
    ALTER TABLE chunks ADD COLUMN origin TEXT;
    -- The origin of each tool call's output, for its result that arrives in a later turn (or ingest).
    CREATE TABLE tool_origins (tool_use_id TEXT PRIMARY KEY, origin TEXT NOT NULL) WITHOUT ROWID;
    INSERT OR IGNORE INTO tool_origins(tool_use_id, origin)
        WITH calls AS (
            SELECT json_extract(c.value, '$.id') AS id, json_extract(c.value, '$.name') AS name,
                coalesce(json_extract(c.value, '$.input.command'), '') AS command,
                coalesce(json_extract(c.value, '$.input.file_path'), json_extract(c.value, '$.input.path'), '')
                    AS path,
                coalesce(t.cwd, '') AS cwd
            FROM turns t, json_each(t.tool_calls) c WHERE json_valid(t.tool_calls)
        )
        SELECT id, CASE
            WHEN name IN ('WebFetch', 'WebSearch') OR substr(name, 1, 5) = 'mcp__' THEN 'third_party'
            WHEN name = 'Bash' AND (command LIKE '%curl %' OR command LIKE '%wget %' OR command LIKE '%gh issue%'
                OR command LIKE '%gh pr%' OR command LIKE '%gh api%' OR command LIKE '%http://%'
                OR command LIKE '%https://%') THEN 'third_party'
            WHEN name IN ('Read', 'Grep', 'Glob') AND (
                (path GLOB '/*' AND path != cwd AND substr(path, 1, length(cwd) + 1) != cwd || '/')
                OR path GLOB '*node_modules/*' OR path GLOB '*-packages/*' OR path GLOB '*venv/*'
                OR path GLOB '*vendor/*' OR path GLOB '../*') THEN 'third_party'
            ELSE 'project' END
        FROM calls WHERE id IS NOT NULL;
    -- Chunks stored before: by kind; a tool result by its call (unknown: third-party, the safe side).
    UPDATE chunks SET origin = CASE
        WHEN kind = 'memory' THEN 'memory'
        WHEN kind = 'prompt' AND session_key LIKE '%/agent-%' THEN 'assistant'
        WHEN kind = 'prompt' THEN 'user'
        WHEN kind IN ('reply', 'compact_summary', 'api_error') THEN 'assistant'
        WHEN EXISTS (
            SELECT 1 FROM turns t, json_each(t.tool_results) r
            LEFT JOIN tool_origins o ON o.tool_use_id = json_extract(r.value, '$.tool_use_id')
            WHERE t.id = chunks.turn_id AND json_valid(t.tool_results)
              AND coalesce(o.origin, 'third_party') = 'third_party'
        ) THEN 'third_party'
        ELSE 'project' END;
    -- A chunk written without an origin (stored memories, older writers) gets one from its kind.
    CREATE TRIGGER chunks_origin AFTER INSERT ON chunks WHEN new.origin IS NULL BEGIN
        UPDATE chunks SET origin = CASE
            WHEN new.kind = 'memory' THEN 'memory'
            WHEN new.kind = 'prompt' AND new.session_key LIKE '%/agent-%' THEN 'assistant'
            WHEN new.kind = 'prompt' THEN 'user'
            WHEN new.kind IN ('reply', 'compact_summary', 'api_error') THEN 'assistant'
            ELSE 'third_party' END
        WHERE id = new.id;
    END;
    """,
    """
    -- Memories the user corrected or forgot (lmm_mcp.edits). Applied after every merge of the extractions, so
    -- an edit outlives re-extraction and reaches the training data; deleting the row undoes it.
    CREATE TABLE memory_edits (
        key TEXT PRIMARY KEY,               -- the memory's key, category:project:subject
        action TEXT NOT NULL CHECK (action IN ('correct', 'forget')),
        text TEXT,                          -- the corrected text (redacted); NULL for 'forget'
        at TEXT NOT NULL
    ) WITHOUT ROWID;
    """,
    """
    -- A session's third-party chunks, newest first (queries.third_party_outputs: does a reply relay a page?).
    -- Without it that lookup, made for every assistant turn, walks all of a session's chunks: quadratic in a
    -- long session (a 1 GB transcript ingested at 0.08 MB/s).
    CREATE INDEX chunks_third_party ON chunks(session_key, id) WHERE origin = 'third_party';
    """,
    """
    -- A retrieved memory chunk's row (retrieval: is it superseded?), and a memory's chunk when it changes.
    -- Without it each hit scanned every memory: 22 ms a retrieval at 4,000 memories.
    CREATE INDEX memories_by_chunk ON memories(chunk_id);
    """,
    """
    -- Which extraction rules (transcripts.extraction.EXTRACTION_RULES) read each session: a session read by
    -- older rules is extracted again at the next refresh, so better rules reach the history already stored.
    ALTER TABLE session_memories ADD COLUMN rules INTEGER NOT NULL DEFAULT 0;
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


class StoreError(RuntimeError):
    """The store cannot be used as it is; the message says why and what to do."""


def connect(path: Path, busy_timeout_ms: int = 60_000) -> sqlite3.Connection:
    """Open (creating and migrating if needed) the store at `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(
        path, timeout=busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False
    )
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    _enable_wal(conn, path, busy_timeout_ms / 1000)
    conn.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: durable at checkpoints, never corrupt
    conn.execute("PRAGMA foreign_keys = ON")
    _migrate(conn, path)
    return conn


def _enable_wal(conn: sqlite3.Connection, path: Path, patience_s: float) -> None:
    """Switch a store to WAL. Switching needs the file to itself, and SQLite can answer 'locked' at once
    (no busy handler) while another process does the same on a brand-new file: wait and try again."""
    deadline = time.monotonic() + patience_s
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise StoreError(f"cannot open {path}: {e}") from e
            time.sleep(0.05)


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version == SCHEMA_VERSION:
        return
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path} has schema version {version}, newer than this lmm-mcp ({SCHEMA_VERSION}): upgrade"
        )
    conn.execute("BEGIN IMMEDIATE")  # another process may be migrating: re-read under the write lock
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        for step in range(version, SCHEMA_VERSION):
            for statement in _statements(MIGRATIONS[step]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {step + 1}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _statements(script: str) -> Iterator[str]:
    """Split a migration into statements (sqlite3.complete_statement knows about trigger bodies)."""
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                yield buf
            buf = ""
    if buf.strip():
        yield buf


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A short write transaction that takes the write lock up front (no lock upgrade deadlocks)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


@dataclass(frozen=True)
class StoreStats:
    projects: int
    sessions: int
    turns: int
    chunks: int
    embedded_chunks: int
    memories: int
    files: int
    lines_skipped: int
    secrets_redacted: int
    db_bytes: int


def stats(conn: sqlite3.Connection, path: Path) -> StoreStats:
    one = lambda sql: conn.execute(sql).fetchone()[0] or 0  # noqa: E731
    db_bytes = sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
    return StoreStats(
        projects=one("SELECT count(*) FROM projects"),
        sessions=one("SELECT count(*) FROM sessions"),
        turns=one("SELECT count(*) FROM turns"),
        chunks=one("SELECT count(*) FROM chunks"),
        embedded_chunks=one("SELECT count(*) FROM vectors"),
        memories=one("SELECT count(*) FROM memories"),
        files=one("SELECT count(*) FROM files"),
        lines_skipped=one("SELECT sum(lines_skipped) FROM files"),
        secrets_redacted=one("SELECT sum(secrets_redacted) FROM files"),
        db_bytes=db_bytes,
    )


def project_id(conn: sqlite3.Connection, path: str) -> int:
    row = conn.execute("SELECT id FROM projects WHERE path = ?", (path,)).fetchone()
    if row:
        return row[0]
    name = Path(path).name or path
    return conn.execute("INSERT INTO projects(path, name) VALUES (?, ?)", (path, name)).lastrowid


def resolve_projects(conn: sqlite3.Connection, project: str) -> list[int]:
    """Project ids a user's `--project` names: a path (and folders under it) or a project's folder name."""
    p = project.rstrip("/") or "/"
    rows = conn.execute(
        "SELECT id FROM projects WHERE path = ? OR path LIKE ? ESCAPE '\\' OR name = ?",
        (p, _like_prefix(p) + "/%", p),
    ).fetchall()
    return [r[0] for r in rows]


def project_paths_named(conn: sqlite3.Connection, project: str) -> list[str]:
    """The stored project paths a user's `--project` names (see resolve_projects)."""
    ids = resolve_projects(conn, project)
    if not ids:
        return []
    rows = conn.execute(f"SELECT path FROM projects WHERE id IN ({','.join('?' * len(ids))})", ids)
    return [r[0] for r in rows]


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
