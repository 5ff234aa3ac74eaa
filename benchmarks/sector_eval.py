"""Score the configured sector rules on a labelled file.

    python benchmarks/sector_eval.py LABELLED.jsonl [--config config.yaml] [--errors]

Each line of LABELLED.jsonl is an object with `title`, `summary`, `primary` (a sector slug, or
`none` for a story the newsletter should leave out) and `secondary` (more slugs). The script runs
the classifier of the given config (default: the repository's config.yaml) and prints, for the
top-ranked sector against the primary label: precision, recall and F1 per sector, macro-F1 over
the sectors, top-1 accuracy (strict, and lenient: primary or secondary), the share of off-topic
items left out, the share of sector items wrongly left out, and the time to classify 10,000
stories. --errors lists every miss.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from newsletter.config import load_config  # noqa: E402
from newsletter.pipeline import make_classifier  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("labelled", type=Path)
    parser.add_argument("--config", type=Path, default=ROOT / "config.yaml")
    parser.add_argument("--errors", action="store_true", help="list every miss")
    args = parser.parse_args()

    config = load_config(args.config)
    classifier = make_classifier(config)
    slugs = config.sector_slugs
    items = [
        json.loads(line)
        for line in args.labelled.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]

    tp = dict.fromkeys(slugs, 0)
    fp = dict.fromkeys(slugs, 0)
    fn = dict.fromkeys(slugs, 0)
    sector_items = correct = lenient = dropped = none_items = none_out = 0
    misses = []
    for item in items:
        ranked = classifier.classify(item["title"], item.get("summary") or "")
        top = ranked[0] if ranked else "none"
        primary = item["primary"]
        if primary == "none":
            none_items += 1
            none_out += not ranked
        else:
            sector_items += 1
            correct += top == primary
            lenient += top in {primary, *item.get("secondary", [])}
            dropped += not ranked
        if top != primary:
            if top != "none":
                fp[top] += 1
            if primary != "none":
                fn[primary] += 1
            misses.append((primary, top, ranked, item["title"]))
        elif top != "none":
            tp[top] += 1

    print(
        f"file: {args.labelled} ({len(items)} items: {sector_items} in sectors, "
        f"{none_items} off-topic)"
    )
    print(f"rules: {args.config}")
    print(f"{'sector':26} {'prec':>6} {'recall':>6} {'F1':>6} {'n':>4}")
    f1s = []
    for slug in slugs:
        p = tp[slug] / (tp[slug] + fp[slug]) if tp[slug] + fp[slug] else 0.0
        r = tp[slug] / (tp[slug] + fn[slug]) if tp[slug] + fn[slug] else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        f1s.append(f1)
        print(f"{slug:26} {p:6.2f} {r:6.2f} {f1:6.2f} {tp[slug] + fn[slug]:4d}")
    print(f"macro-F1 over {len(slugs)} sectors: {sum(f1s) / len(f1s):.3f}")
    print(
        f"top-1 accuracy on primary: {correct / max(sector_items, 1):.3f}"
        f" (lenient, primary or secondary: {lenient / max(sector_items, 1):.3f})"
    )
    print(f"off-topic items left out: {none_out / max(none_items, 1):.3f}")
    print(f"sector items wrongly left out: {dropped / max(sector_items, 1):.3f}")

    stories = [(item["title"], item.get("summary") or "") for item in items]
    batch = (stories * (10_000 // len(stories) + 1))[:10_000]
    started = time.perf_counter()
    for title, summary in batch:
        classifier.classify(title, summary)
    elapsed = time.perf_counter() - started
    print(
        f"classifying 10,000 stories: {elapsed:.3f} s "
        f"({platform.machine()}, Python {platform.python_version()})"
    )

    if args.errors:
        print("\nmisses (primary -> predicted [ranked]: title)")
        for primary, top, ranked, title in sorted(misses):
            print(f"  {primary} -> {top} {list(ranked)}: {title[:100]}")


if __name__ == "__main__":
    main()
