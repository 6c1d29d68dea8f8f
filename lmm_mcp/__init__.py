"""lmm-mcp: a local memory hierarchy for coding agents, served over MCP.

The product around the trainer. `app.py` is the composition root: it builds every part below from one
`Config` and holds the one ingest (ingest, refresh memories, embed).

- the store side: `store.py` (schema, connection, migrations), `turns.py` (a Turn as a row, both ways),
  `queries.py` (read queries for the parts that only read), `memories.py` (the stored memories), `archive.py`;
- ingest: `ingest.py` (incremental, crash-safe), `chunking.py`, `embed.py` + `encoder.py` (torch-free vectors);
- recall: `retrieval.py` (BM25 + vectors), `recall.py` (retrieval, then the LMM), `history.py` (the store as
  the trainer's view);
- the doors: `cli.py`, `server.py` + `tools.py` (MCP), `jobs.py` (retrain in the background), `hooks.py`,
  `install.py`, `watch.py`, `demo.py` + `samples/`.

How a transcript becomes memories lives in the `transcripts` package; training in `trainer`.
"""

__version__ = "0.1.0"
