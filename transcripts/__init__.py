"""How a Claude Code transcript becomes memories: one place, with no store, no model and no API call.

    turns = parse_file(path)                      # parse.py: JSONL records -> merged, cleaned turns
    clean, found = Redactor().redact_bytes(raw)   # redact.py: secrets and .env values out, before anything is kept
    memories = extract_session(turns)             # extraction.py: typed memories with their sources
    merged = combine(per_session_memories)        # extraction.py: one memory per subject, across sessions

- `parse.py`: every transcript layout Claude Code has written (1.0 inline sidechains, 2.0 `agent-*.jsonl`,
  2.1 `subagents/`), streamed records merged, markup trimmed, malformed lines reported, never fatal.
- `redact.py`: the secret pattern table, and the blanking of `.env` values that a tool read.
- `extraction.py`: a *memory* (`Memory`: category, self-contained text, keywords, salience, sources) and the
  rules that find them, from what was said (`conversation.py`) and what the tools did (`tool_use.py`, which
  parses code and package files with `source_code.py`). A `Draft` is a memory before it has sources.
- `wording.py`: word sets and their overlap (Jaccard), shared by extraction, training data and evaluation.

Layers: `transcripts` imports neither `trainer` nor `lmm_mcp`; `trainer` imports `transcripts`; `lmm_mcp`
imports both (tests/test_layers.py enforces it). Ingest (`lmm_mcp.ingest`) and the memory refresh
(`lmm_mcp.memories`) store what this package produces.
"""
