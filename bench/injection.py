"""Injection neutraliser: the share of a hand-written injection corpus it neutralises, and how often it
flags ordinary coding text (bench/injection_corpus.py).

A case counts as neutralised when its payload (the command, address or demand it carries) is gone from
`transcripts.injection.neutralise(text)`; a clean text counts as a false positive when any span of it is
flagged. Prints per style and overall; the `hard` style holds injections the detector is not built to
catch (no address, other languages, encodings) and is reported apart as well as in the total.

Run:  python bench/injection.py [--json] [--show-misses]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from injection_corpus import (
    HELD_OUT_2_CLEAN,
    HELD_OUT_2_INJECTIONS,
    HELD_OUT_3_CLEAN,
    HELD_OUT_3_INJECTIONS,
    HELD_OUT_CLEAN,
    HELD_OUT_INJECTIONS,
    clean_texts,
    injection_cases,
)

from transcripts.injection import find_spans, neutralise, reveal


def measure() -> dict:
    """Neutralised share per style and overall, and the false-positive rate on clean text."""
    cases, clean = injection_cases(), clean_texts()
    started = time.perf_counter()
    by_style: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    misses = []
    for c in cases:
        ok = c.payload not in neutralise(c.text)
        by_style[c.style][0] += ok
        by_style[c.style][1] += 1
        if not ok:
            misses.append({"style": c.style, "carrier": c.carrier, "payload": c.payload})
    flagged = []
    for kind, text in clean:
        spans = find_spans(reveal(text))
        if spans:
            flagged.append({"kind": kind, "text": text[:120], "reasons": [s.reason for s in spans]})
    seconds = time.perf_counter() - started
    total = sum(n for n, _ in by_style.values()), sum(t for _, t in by_style.values())
    core = [(n, t) for style, (n, t) in by_style.items() if style != "hard"]
    return {
        "injections": total[1],
        "neutralised": total[0],
        "neutralised_share": round(total[0] / total[1], 3),
        "neutralised_share_without_hard": round(sum(n for n, _ in core) / sum(t for _, t in core), 3),
        "by_style": {s: {"neutralised": n, "cases": t} for s, (n, t) in by_style.items()},
        "clean_texts": len(clean),
        "false_positives": len(flagged),
        "false_positive_rate": round(len(flagged) / len(clean), 3),
        "flagged_clean": flagged,
        "misses": misses,
        "ms_per_text": round(1000 * seconds / (len(cases) + len(clean)), 3),
        "held_out_1": held_out(HELD_OUT_INJECTIONS, HELD_OUT_CLEAN),  # a regression set now (see the corpus)
        "held_out_2": held_out(HELD_OUT_2_INJECTIONS, HELD_OUT_2_CLEAN),  # a regression set now too
        "held_out_3": held_out(HELD_OUT_3_INJECTIONS, HELD_OUT_3_CLEAN),  # the estimate: never tuned on
    }


def held_out(injections: list[tuple[str, str]], clean: list[str]) -> dict:
    """A set written after tuning (bench/injection_corpus.py): (text, payload) injections and clean texts."""
    missed = [text for text, payload in injections if payload in neutralise(text)]
    flagged = [text for text in clean if find_spans(reveal(text))]
    return {
        "injections": len(injections),
        "neutralised": len(injections) - len(missed),
        "neutralised_share": round(1 - len(missed) / len(injections), 3),
        "clean_texts": len(clean),
        "false_positives": len(flagged),
        "false_positive_rate": round(len(flagged) / len(clean), 3),
        "missed": missed,
        "flagged": flagged,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument(
        "--show-misses", action="store_true", help="list missed injections and flagged clean text"
    )
    args = parser.parse_args()
    r = measure()
    if args.json:
        print(json.dumps(r, indent=2))
        return
    print(
        f"injections neutralised: {r['neutralised']}/{r['injections']} = {r['neutralised_share']:.1%}"
        f" ({r['neutralised_share_without_hard']:.1%} without the 'hard' style)"
    )
    for style, v in r["by_style"].items():
        print(f"  {style:18} {v['neutralised']:3}/{v['cases']}")
    print(f"clean texts flagged: {r['false_positives']}/{r['clean_texts']} = {r['false_positive_rate']:.1%}")
    sets = [("held_out_1", "held-out set 1 (regression)"), ("held_out_2", "held-out set 2 (regression)")]
    for name, label in [*sets, ("held_out_3", "held-out set 3 (estimate)")]:
        h = r[name]
        print(
            f"{label}: {h['neutralised']}/{h['injections']} neutralised,"
            f" {h['false_positives']}/{h['clean_texts']} clean flagged"
        )
        if args.show_misses:
            for text in h["missed"]:
                print("  MISS", text[:110].replace("\n", " "))
            for text in h["flagged"]:
                print("  FLAGGED", text[:110].replace("\n", " "))
    print(f"{r['ms_per_text']} ms per text")
    if args.show_misses:
        for m in r["misses"]:
            print("MISS", m)
        for f in r["flagged_clean"]:
            print("FLAGGED", f)


if __name__ == "__main__":
    main()
