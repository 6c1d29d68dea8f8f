"""What memory costs the agent's context: tokens served, against the size of the records they stand for.

    record(cfg.home, "recall_memory", served_chars=len(reply), source_chars=record_chars(conn, cited))
    summary(cfg.home)   # {"channels": {"recall_memory": {"calls", "tokens_served", "tokens_of_sources"}, ...}, ...}

Every place that puts memory in front of the agent counts here: the `recall_memory` and `get_source` tools,
and the SessionStart and UserPromptSubmit hooks, which inject text the user never asked for and are the
hidden cost users of memory tools complain about. A served text is counted in estimated tokens
(CHARS_PER_TOKEN, as recall budgets them: no tokenizer is loaded for this), and so are the records it cites,
each counted whole, so `memory_status` can say "N tokens served for M tokens of transcript".

The log is one JSON line per serving in `<home>/usage.jsonl`, appended with a single O_APPEND write: a hook
never waits on the store's write lock for it, concurrent writers never interleave within a line, and a line
cut by a crash is skipped when read (each line starts with its newline, so the next one is whole). Counting never fails a recall: a log that cannot be written is skipped.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import orjson

CHARS_PER_TOKEN = 4  # budgeting without a tokenizer: English and code average ~4 characters a token
CHANNELS = ("recall_memory", "get_source", "session_start", "user_prompt")
FILE = "usage.jsonl"


def tokens(chars: int) -> int:
    """Estimated tokens of `chars` characters of text."""
    return math.ceil(chars / CHARS_PER_TOKEN) if chars > 0 else 0


def record(home: Path, channel: str, *, served_chars: int, source_chars: int | None) -> None:
    """Count one serving of `served_chars` characters that stand for `source_chars` characters of records
    (None: the channel does not cite records)."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}")
    line = orjson.dumps(
        {
            "t": round(time.time(), 3),
            "channel": channel,
            "served": tokens(served_chars),
            "sources": None if source_chars is None else tokens(source_chars),
        }
    )
    try:
        home.mkdir(parents=True, exist_ok=True)
        fd = os.open(home / FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, b"\n" + line)  # a line cut short before it costs only itself
        finally:
            os.close(fd)
    except OSError:
        pass  # accounting is never worth a failed recall


def summary(home: Path) -> dict[str, Any]:
    """Totals per channel since counting began, and the whole: tokens served against tokens of sources."""
    channels = {c: {"calls": 0, "tokens_served": 0, "tokens_of_sources": 0} for c in CHANNELS}
    since = None
    try:
        raw = (home / FILE).read_bytes()
    except OSError:
        raw = b""
    for line in raw.splitlines():
        if not line:
            continue
        try:
            row = orjson.loads(line)
            c = channels[row["channel"]]
            served, sources = int(row["served"]), row["sources"]
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            continue  # a line cut short by a crash, or not ours
        c["calls"] += 1
        c["tokens_served"] += served
        c["tokens_of_sources"] += int(sources or 0)
        since = since or row.get("t")
    served = sum(c["tokens_served"] for c in channels.values())
    cited = {c: v for c, v in channels.items() if c not in ("session_start",)}
    return {
        "channels": channels,
        "tokens_served": served,
        "tokens_of_sources": sum(c["tokens_of_sources"] for c in channels.values()),
        "served_per_source_token": _ratio(
            sum(c["tokens_served"] for c in cited.values()),
            sum(c["tokens_of_sources"] for c in cited.values()),
        ),
        "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since)) if since else None,
    }


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None
