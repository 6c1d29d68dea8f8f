"""`python -m lmm_mcp` is the `lmm-mcp` command."""

from lmm_mcp.cli import main

raise SystemExit(main())
