"""blog: a personal Hugo site, two weekend sessions (January 17 and February 7, 2026).

Hugo with the PaperMod theme on Netlify, reading time, a spelling preference; later the move to Cloudflare
Pages and a Hugo upgrade.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .spec import BLOG, Spec

if TYPE_CHECKING:
    from lmm_mcp.samples.build import Session

HUGO_TOML = """\
baseURL = "https://ana.dev/"
languageCode = "en-gb"
title = "Ana's notes"
theme = "PaperMod"

[params]
  ShowReadingTime = false
  ShowPostNavLinks = true
  ShowCodeCopyButtons = true
"""


def b01_reading_time(s: Session) -> None:
    s.user(
        "Quick one on my blog, not work. It's Hugo with the PaperMod theme, hosted on Netlify. I'd like posts "
        "to show an estimated reading time."
    )
    s.read("hugo.toml", HUGO_TOML)
    s.edit("hugo.toml", "  ShowReadingTime = false", "  ShowReadingTime = true")
    s.bash(
        "hugo --minify",
        "Start building sites … \nhugo v0.121.2-6d5b44305eaa9d0a157946492a6f319da38de154+extended linux/amd64 "
        "BuildDate=2024-01-05T12:21:15Z VendorInfo=gohugoio\n\n                   | EN\n-------------------+-----\n"
        "  Pages            | 48\n  Paginator pages  |  2\n  Static files     |  6\n\nTotal in 412 ms",
    )
    s.user(
        "Lovely. Also, when you touch my posts: I write in British English — colour, optimise, behaviour. "
        "Don't 'fix' the spelling."
    )
    s.say("Noted — I'll leave British spellings as they are.")


def b02_cloudflare(s: Session) -> None:
    s.user(
        "I'm moving the blog from Netlify to Cloudflare Pages — the DNS is already at Cloudflare and I'd like "
        "everything in one place. Build command `hugo --minify`, output dir `public`. Also bump Hugo to "
        "0.141.0 while we're at it, locally and on the build (HUGO_VERSION env var)."
    )
    s.bash(
        "hugo version",
        "hugo v0.141.0-e7bd51698e5c3778a86003018702b1a7dcb9559a+extended linux/amd64 BuildDate=2025-01-16T13:11:18Z",
    )
    s.bash("hugo --minify", "Start building sites … \n\n  Pages            | 51\n\nTotal in 398 ms")
    s.bash("git rm netlify.toml", "rm 'netlify.toml'")
    s.edit(
        "README.md",
        "Deployed by Netlify on every push to main.",
        "Deployed by Cloudflare Pages on every push to main (build `hugo --minify`, output `public`, "
        "HUGO_VERSION=0.141.0).",
    )
    s.user("Set. The first Pages build went through and ana.dev points at it. Bye Netlify.")
    s.say("Done: Cloudflare Pages builds from main with Hugo 0.141.0; netlify.toml is removed.")


SESSIONS = [
    Spec("B01", BLOG, "2026-01-17T16:45:00Z", "main", "Reading time on posts", b01_reading_time),
    Spec("B02", BLOG, "2026-02-07T12:30:00Z", "main", "Move to Cloudflare Pages", b02_cloudflare),
]
