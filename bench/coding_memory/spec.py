"""One authored session: where and when it happened, and the script that writes its records."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lmm_mcp.samples.build import Session

LEDGERLINE = "/home/ana/src/ledgerline"
TRAILMAP = "/home/ana/src/trailmap"
KILN = "/home/ana/src/kiln"
BLOG = "/home/ana/src/blog"


@dataclass(frozen=True)
class Spec:
    label: str  # stable name the questions cite as evidence (session ids derive from cwd and start)
    cwd: str
    start: str  # ISO-8601 UTC
    branch: str
    title: str
    script: Callable[[Session], None]
    version: str = "2.1.9"  # Claude Code version the records carry
