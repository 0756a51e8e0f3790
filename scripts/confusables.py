"""Write functions/chat/confusables.tsv, the table behind display names' skeletons (docs/api.md).

The source is Unicode's confusables.txt (UTS #39) as the PyPI package confusable-homoglyphs ships
it (its confusables.json: each character with the characters it is confusable with, both ways):

    pip download --no-deps confusable-homoglyphs==3.3.1 -d /tmp/ch && unzip -o /tmp/ch/*.whl -d /tmp/ch
    .venv/bin/python scripts/confusables.py /tmp/ch/confusable_homoglyphs/confusables.json

Single characters that Unicode calls confusable are joined into classes (transitively: 1, l, I
and | are one class, as they are one skeleton in UTS #39); each class is written as its
representative, ASCII first, then the lowest code point. Multi-character confusables ("rn" for
"m") are left out: a table of single characters keeps the skeleton one lookup per character.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

TABLE = Path(__file__).resolve().parents[1] / "functions" / "chat" / "confusables.tsv"


def classes(pairs: dict[str, list[dict[str, str]]]) -> dict[str, str]:
    """Each confusable character's representative (characters that are their own left out)."""
    parent: dict[str, str] = {}

    def root(char: str) -> str:
        while parent.setdefault(char, char) != char:
            parent[char] = parent[parent[char]]
            char = parent[char]
        return char

    for source, others in pairs.items():
        source = source.replace("\u200e", "")  # the package wraps right-to-left letters in LRMs
        for other in others:
            target = other["c"].replace("\u200e", "")
            if len(source) == 1 and len(target) == 1:
                parent[root(source)] = root(target)
    members: dict[str, list[str]] = defaultdict(list)
    for char in list(parent):
        members[root(char)].append(char)
    table = {}
    for group in members.values():
        representative = min(group, key=lambda char: (not char.isascii(), ord(char)))
        table.update({char: representative for char in group if char != representative})
    return table


def main(source: str) -> None:
    table = classes(json.loads(Path(source).read_text(encoding="utf-8")))
    lines = [f"{ord(char):X}\t{ord(target):X}" for char, target in sorted(table.items())]
    header = "# source\ttarget (hex code points): scripts/confusables.py, from Unicode's confusables.txt\n"
    TABLE.write_text(header + "\n".join(lines) + "\n", encoding="ascii")
    print(f"{TABLE}: {len(lines)} characters")


if __name__ == "__main__":
    main(sys.argv[1])
