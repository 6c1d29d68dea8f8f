"""Turning Claude Code transcripts into a trained memory model.

Parsing, redaction, memory extraction, training data, CPT and SFT, evaluation, model loading.
Never imports `lmm_mcp`: the product depends on the trainer, not the reverse.
"""
