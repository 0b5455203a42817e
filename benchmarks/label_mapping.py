"""Labelled pair files mapped to record ids (transforms/pair_text.py), on Abt-Buy as
published and as real exports change it.

For each of pairs/train.txt, valid.txt and test.txt, the share of lines that map by the
normalised key alone and with the nearest-record fallback (floor 0.9), and how often a
mapped line's label agrees with matches.csv. Then the same files distorted as exports
differ (seeded): an attribute the tables lack (``category``), HTML entities in names,
decimal forms (``899`` / ``899.0`` / ``899.00``), a currency suffix, ``0.0`` for an empty
price. The rule before the tolerant mapping refused such a file outright (a serialised
attribute the records lack); its key on the shared columns (lower-case ``[a-z0-9]``, no
numeric or entity forms, no fallback) is shown beside.

    .venv/bin/python benchmarks/label_mapping.py [--floor 0.9] [--seed 0]
"""

from __future__ import annotations

import argparse
import csv
import random
import re
from pathlib import Path

from sigil.transforms.pair_text import map_pairs, nearest_matches, parse_record, record_text, serialize

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "er" / "abt_buy"
COLUMNS = ["name", "description", "price"]
_OLD = re.compile(r"[^a-z0-9]")


def nearest_ids(lines, unmapped, tables, floor: float) -> dict:
    """(source, side text) -> id of its one nearest record, for the sides of unmapped lines."""
    texts = sorted({record_text(parse_record(side), COLUMNS) for n, _ in unmapped
                    for side in lines[n - 1].split("\t")[:2] if side.startswith("COL ")})
    out = {}
    for name, rows in tables.items():
        index, score = nearest_matches(texts, [record_text(r, COLUMNS) for r in rows], floor)
        for q, (i, s) in enumerate(zip(index, score)):
            if i[0] >= 0 and (i[1] < 0 or s[0] > s[1]):
                out[(name, texts[q])] = rows[i[0]]["id"]
    return out


def old_rule(lines, tables) -> int:
    """Lines the previous key maps on the shared columns (one record each side, either way)."""
    key = lambda r: tuple(_OLD.sub("", str(r.get(c) or "").lower()) for c in COLUMNS)  # noqa: E731
    index = {name: {} for name in tables}
    for name, rows in tables.items():
        for r in rows:
            index[name].setdefault(key(r), []).append(r["id"])
    (a, b) = index
    return sum(any(len(index[a].get(key(parse_record(x)), [])) == 1 and len(index[b].get(key(parse_record(y)), [])) == 1
                   for x, y in (sides, sides[::-1])) for sides in (line.split("\t")[:2] for line in lines))


def distorted(line: str, rng: random.Random) -> str:
    def side(text):
        r = parse_record(text)
        price, roll = r.get("price", ""), rng.random()
        if price and roll < 0.25:
            price += "0" if "." in price else ".0"
        elif price and roll < 0.35:
            price += " usd"
        elif not price and roll < 0.5:
            price = "0.0"
        r.update(price=price, name=r["name"].replace(" & ", " &amp; ").replace(" - ", " &mdash; "),
                 category=rng.choice(["tv", "audio", "camera"]))
        return serialize(r, [*COLUMNS, "category"])

    a, b, label = line.split("\t")
    return f"{side(a)}\t{side(b)}\t{label}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--floor", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    tables = {name: list(csv.DictReader(open(DATA / f"table{t}.csv", encoding="utf-8")))
              for name, t in (("abt", "A"), ("buy", "B"))}
    gold = {(r["tableA_id"], r["tableB_id"]) for r in csv.DictReader(open(DATA / "matches.csv"))}
    agree = lambda ms: sum(((a, b) in gold) == bool(label) for _, a, b, label in ms) / max(len(ms), 1)  # noqa: E731
    print("| file | lines | previous key | normalised key | + nearest record | by nearest | labels agree with gold |")
    print("|---|---|---|---|---|---|---|")
    rng = random.Random(args.seed)
    for variant in ("published", "distorted"):
        for split in ("train", "valid", "test"):
            lines = (DATA / "pairs" / f"{split}.txt").read_text(encoding="utf-8").splitlines()
            if variant == "distorted":
                lines = [distorted(line, rng) for line in lines]
            exact, unmapped = map_pairs(lines, tables, COLUMNS)
            mapped, _ = map_pairs(lines, tables, COLUMNS, nearest=nearest_ids(lines, unmapped, tables, args.floor))
            previous = "refused (category)" if variant == "distorted" else f"{old_rule(lines, tables) / len(lines):.1%}"
            if variant == "distorted":
                previous += f"; {old_rule(lines, tables) / len(lines):.1%} on the shared columns"
            n = len(lines)
            print(f"| {split} ({variant}) | {n} | {previous} | {len(exact) / n:.1%} | {len(mapped) / n:.1%} "
                  f"| {len(mapped) - len(exact)} | {agree(mapped):.3f} |")


if __name__ == "__main__":
    main()
