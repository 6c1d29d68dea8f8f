"""Write the sample transcripts from the authored scenario, in Claude Code's on-disk format.

    python -m lmm_mcp.samples.build        # rewrites lmm_mcp/samples/projects/ (same bytes on every run)

`scenario.py` says what happened in each session (prompts, replies, tool calls and their output); `Session`
turns that into the records Claude Code 2.1 writes: a `parentUuid` chain, assistant messages streamed as one
record per content block sharing `message.id` and `requestId`, tool results carrying the per-tool
`toolUseResult`, `file-history-snapshot` records before prompts, a `turn_duration` system record at the end and
a legacy `summary` title as the first line. Ids and timestamps come from the session's own seed, so the output
is deterministic.
"""

from __future__ import annotations

import hashlib
import random
import re
import shutil
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

NAMESPACE = uuid.UUID("6f1d3b2a-4c5e-4f70-9a8b-0c1d2e3f4a5b")  # fixed: ids must not change between runs
MODEL = "claude-sonnet-4-5-20250929"
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


class Session:
    """One transcript being written: call `user`, `say`, `bash`, `read`, `write`, `edit` in order."""

    def __init__(self, cwd: str, start: str, *, branch: str, version: str, title: str):
        self.cwd = cwd.rstrip("/")
        self.id = str(uuid.uuid5(NAMESPACE, f"{self.cwd}#{start}"))
        self.branch = branch
        self.version = version
        self.title = title
        self.records: list[dict[str, Any]] = []
        self.parent: str | None = None
        self.clock = datetime.fromisoformat(start.replace("Z", "+00:00"))
        self.started = self.clock
        self.rng = random.Random(self.id)
        self._n = 0

    # ------------------------------------------------------------------------------------------ the script

    def user(self, text: str) -> None:
        """A prompt the user typed, preceded by the file-history snapshot Claude Code takes for it."""
        self._tick(25, 110)
        uid = self._uuid()
        ts = self._ts()
        self.records.append(
            {
                "type": "file-history-snapshot",
                "messageId": uid,
                "snapshot": {"messageId": uid, "trackedFileBackups": {}, "timestamp": ts},
                "isSnapshotUpdate": False,
            }
        )
        self._append("user", uid, {"role": "user", "content": text})

    def say(self, text: str) -> None:
        """An assistant reply that ends the turn."""
        self._assistant([{"type": "text", "text": text}], "end_turn")

    def bash(self, command: str, output: str, *, error: bool = False, say: str | None = None) -> None:
        """A Bash call; `error` marks a non-zero exit: the result is the output, `toolUseResult` an error string."""
        block = {"command": command, "description": _describe(command)}
        if error:
            self._tool("Bash", block, output, f"Error: {output}", error=True, say=say)
        else:
            result = {"stdout": output, "stderr": "", "interrupted": False, "isImage": False}
            self._tool("Bash", block, output or "(no output)", result, say=say)

    def read(self, rel: str, text: str, *, say: str | None = None) -> None:
        path = self._path(rel)
        lines = text.splitlines()
        numbered = "\n".join(f"{i:>6}→{line}" for i, line in enumerate(lines, 1))
        result = {
            "type": "text",
            "file": {
                "filePath": path,
                "content": text,
                "numLines": len(lines),
                "startLine": 1,
                "totalLines": len(lines),
            },
        }
        self._tool("Read", {"file_path": path}, numbered, result, say=say)

    def write(self, rel: str, text: str, *, say: str | None = None) -> None:
        path = self._path(rel)
        result = {"type": "create", "filePath": path, "content": text, "structuredPatch": []}
        self._tool(
            "Write",
            {"file_path": path, "content": text},
            f"File created successfully at: {path}",
            result,
            say=say,
        )

    def edit(self, rel: str, old: str, new: str, *, say: str | None = None) -> None:
        path = self._path(rel)
        patch = [
            {
                "oldStart": 1,
                "oldLines": old.count("\n") + 1,
                "newStart": 1,
                "newLines": new.count("\n") + 1,
                "lines": [f"-{x}" for x in old.splitlines()] + [f"+{x}" for x in new.splitlines()],
            }
        ]
        result = {
            "filePath": path,
            "oldString": old,
            "newString": new,
            "structuredPatch": patch,
            "userModified": False,
            "replaceAll": False,
        }
        content = f"The file {path} has been updated. Here's the result of running `cat -n` on a snippet:\n"
        content += "\n".join(f"{i:>6}→{line}" for i, line in enumerate(new.splitlines(), 1))
        self._tool(
            "Edit", {"file_path": path, "old_string": old, "new_string": new}, content, result, say=say
        )

    # ------------------------------------------------------------------------------------------ records

    def lines(self) -> list[dict[str, Any]]:
        """The file's records: the legacy summary title first, then the session, then its last turn's duration."""
        self._tick(1, 2)
        duration = {
            "type": "system",
            "subtype": "turn_duration",
            "durationMs": int((self.clock - self.started).total_seconds() * 1000) % 600_000,
            "isMeta": False,
        }
        tail = [{**self._envelope(self._uuid()), **duration}]
        title = {"type": "summary", "summary": self.title, "leafUuid": self.parent}
        return [title, *self.records, *tail]

    def _tool(
        self,
        name: str,
        block: dict[str, Any],
        content: str,
        result: Any,
        *,
        error: bool = False,
        say: str | None,
    ) -> None:
        tool_id = "toolu_01" + self._code(22)
        blocks = [{"type": "text", "text": say}] if say else []
        blocks.append({"type": "tool_use", "id": tool_id, "name": name, "input": block})
        self._assistant(blocks, "tool_use")
        self._tick(1, 9)
        block_out: dict[str, Any] = {"tool_use_id": tool_id, "type": "tool_result", "content": content}
        if error:
            block_out["is_error"] = True
        self._append("user", self._uuid(), {"role": "user", "content": [block_out]}, toolUseResult=result)

    def _assistant(self, blocks: list[dict[str, Any]], stop: str) -> None:
        """One API response, streamed as one record per content block; only the last has the real usage."""
        msg_id, request = "msg_01" + self._code(22), "req_011C" + self._code(21)
        inputs = self.rng.randint(2_000, 40_000)
        self._tick(3, 14)
        for i, block in enumerate(blocks):
            last = i == len(blocks) - 1
            message = {
                "model": MODEL,
                "id": msg_id,
                "type": "message",
                "role": "assistant",
                "content": [block],
                "stop_reason": stop if last else None,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": 4,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": inputs,
                    "output_tokens": self.rng.randint(40, 900) if last else 1,
                },
            }
            self._append("assistant", self._uuid(), message, requestId=request)
            self._tick(0, 2)

    def _append(self, kind: str, uid: str, message: dict[str, Any], **extra: Any) -> None:
        self.records.append({**self._envelope(uid), "type": kind, "message": message, **extra})
        self.parent = uid

    def _envelope(self, uid: str) -> dict[str, Any]:
        return {
            "parentUuid": self.parent,
            "isSidechain": False,
            "userType": "external",
            "cwd": self.cwd,
            "sessionId": self.id,
            "version": self.version,
            "gitBranch": self.branch,
            "uuid": uid,
            "timestamp": self._ts(),
        }

    def _path(self, rel: str) -> str:
        return rel if rel.startswith("/") else f"{self.cwd}/{rel}"

    def _uuid(self) -> str:
        self._n += 1
        return str(uuid.uuid5(NAMESPACE, f"{self.id}/{self._n}"))

    def _code(self, n: int) -> str:
        self._n += 1
        digest = hashlib.blake2b(f"{self.id}:{self._n}".encode(), digest_size=32).digest()
        return "".join(ALPHABET[b % len(ALPHABET)] for b in digest[:n])

    def _tick(self, lo: float, hi: float) -> None:
        self.clock += timedelta(milliseconds=self.rng.randint(int(lo * 1000), int(hi * 1000)))

    def _ts(self) -> str:
        return self.clock.strftime("%Y-%m-%dT%H:%M:%S.") + f"{self.clock.microsecond // 1000:03d}Z"


def _describe(command: str) -> str:
    words = command.split()
    return "Run " + " ".join(words[:4]) if words else "Run a command"


def encode_cwd(cwd: str) -> str:
    """Claude Code's folder name for a working directory: every character outside [a-zA-Z0-9] becomes '-'."""
    return re.sub(r"[^a-zA-Z0-9]", "-", cwd)


def build(out: Path) -> list[Path]:
    """Write every scenario session under `out` (replacing what was there); return the files written."""
    from lmm_mcp.samples.scenario import SESSIONS

    if out.exists():
        shutil.rmtree(out)
    written = []
    for spec in SESSIONS:
        session = Session(spec.cwd, spec.start, branch=spec.branch, version=spec.version, title=spec.title)
        spec.script(session)
        path = out / encode_cwd(session.cwd) / f"{session.id}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in session.lines()))
        written.append(path)
    return written


def main() -> None:
    from lmm_mcp.samples import samples_path

    files = build(samples_path())
    size = sum(p.stat().st_size for p in files)
    print(f"wrote {len(files)} sessions ({size / 1000:.0f} KB) under {samples_path()}")


if __name__ == "__main__":
    main()
