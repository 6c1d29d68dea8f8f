"""A history of coding sessions becomes a trained memory model: LoRA on a small local LM, CPT then SFT.

    python -m trainer --home ~/.lmm            # train a prepared run folder (e.g. on a GPU box)
    run_pipeline(PipelineConfig(home=...), history)   # the one pipeline every front end calls

- `pipeline.py`: data -> CPT -> SFT -> evaluation -> a new adapter version, as one function; `PipelineConfig`
  declares the training options (`options.py` turns them into flags and tool parameters).
- `pairs.py`: training data from a `History` (CPT documents, retrieval-grounded SFT pairs, abstain pairs).
- `prompts.py`: the recall prompt format the model is trained on and recall uses.
- `train.py` (the loop), `batches.py` (rows into batches), `checkpoint.py` (run and stage files, resume),
  `atomic.py` (crash-safe file writes), `settings.py` (LoRA and stage settings).
- `evaluate.py`, `report.py`, `generate.py`, `versions.py` (adapter versions and the active pointer),
  `models.py` (loading a hub id, folder or GGUF), `devices.py`, `tiny.py` (a tiny Qwen3 for tests).

It imports `transcripts` (the Memory type, word overlap) and never `lmm_mcp`: the store reaches it only through
the `History` protocol, so it runs anywhere the run folder is.
"""
