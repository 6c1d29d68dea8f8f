"""The store seen as the trainer's `History`: sessions, their text, user prompts, memories and retrieval.

    history = app.history()                  # built in lmm_mcp.app, retrieving as recall does
    manifest = trainer.pairs.build_dataset(history, run_dir / "data", DataSettings())

The trainer never imports `lmm_mcp`; this adapter is how the training data gets the same hybrid retrieval
that `recall_memory` uses, so the SFT inputs look exactly like the recall prompts the model will see.
"""

from __future__ import annotations

import sqlite3

from lmm_mcp.chunking import turn_text
from lmm_mcp.memories import load_memories
from lmm_mcp.queries import session_chunks, sessions_with_turns, user_prompts
from lmm_mcp.recall import guard, shown_in_project
from lmm_mcp.retrieval import Retriever, dedupe_hits
from lmm_mcp.turns import load_session_turns
from trainer.pairs import Prompt, SessionInfo
from trainer.prompts import Passage
from trainer.selfstudy import STUDY_KINDS
from transcripts.extraction import Memory
from transcripts.injection import neutralise
from transcripts.provenance import without_third_party

ROLE = {"prompt": "User", "reply": "Assistant", "tool_result": "Tool", "compact_summary": "Summary"}
TURN_CHARS = 4_000  # a pasted log or a giant reply is cut in the CPT text; the start carries the signal


class StoreHistory:
    def __init__(self, conn: sqlite3.Connection, retriever: Retriever):
        self.conn = conn
        self.retriever = retriever

    def sessions(self) -> list[SessionInfo]:
        return [SessionInfo(*r) for r in sessions_with_turns(self.conn)]

    def document(self, key: str) -> str:
        """A session's text for CPT: without third-party tool output, instruction-like spans neutralised
        (every token of it is a training target)."""
        parts = []
        for turn in without_third_party(load_session_turns(self.conn, key), None):
            role = ROLE.get(turn.kind)
            text = neutralise(turn_text(turn)) if role else ""
            if text:
                parts.append(f"{role}: {text[:TURN_CHARS]}")
        return "\n\n".join(parts)

    def prompts(self) -> list[Prompt]:
        return [Prompt(*r) for r in user_prompts(self.conn)]

    def memories(self) -> list[Memory]:
        return load_memories(self.conn)

    def chunks(self) -> list[Passage]:
        """The sessions' excerpts that self-study asks about (`trainer.selfstudy`), as retrieval cuts them."""
        return [
            Passage(text, session_id, uuid, timestamp, project, kind)
            for text, session_id, uuid, timestamp, project, kind in session_chunks(self.conn, STUDY_KINDS)
        ]

    def retrieve(self, query: str, *, k: int, project: str | None, until: str | None = None) -> list[Passage]:
        hits = self.retriever.retrieve(query, k=k, project=project, until=until)
        # as recall shows them, a memory of the project without the name it opens with (`trainer.pairs` puts
        # its gold memory in among them the same way: a name on the gold alone would be a cue to cite it by)
        return [guard(shown_in_project(h, project), query).passage() for h in dedupe_hits(hits)]
