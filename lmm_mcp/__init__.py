"""lmm-mcp: a local memory hierarchy for coding agents, served over MCP."""

__version__ = "0.1.0"
