#!/usr/bin/env python3
"""Extracts the tested blocks of the Markdown documentation.

Convention: an HTML comment on its own line, immediately before a fenced
code block, names the block (GitHub renders the comment invisibly):

    <!-- test: NAME -->
    ```sh
    ...
    ```

NAME is [a-z0-9-]+ and unique within its file. Markers quoted inside other
fenced blocks are text, not markers. Blank lines may separate the
marker from the fence; anything else is an error, as is a marker with no
fence, an unclosed fence or a duplicate name: a broken marker must fail CI,
never silently drop a block from the test.

Usage:
  extract.py list FILE...                 one line per block: FILE NAME LANG
  extract.py get FILE NAME [--sub FROM TO]...
                                          the block's text, with each
                                          substitution applied (in order)
"""

import re
import sys

MARKER = re.compile(r"^<!--\s*test:\s*([a-z0-9-]+)\s*-->\s*$")
LOOSE = re.compile(r"<!--\s*test\b")
FENCE = re.compile(r"^(```+|~~~+)\s*([A-Za-z0-9_+-]*)\s*$")


def blocks(path):
    """Returns {name: (lang, text)} for the marked blocks of one file."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    found = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        opening = FENCE.match(line)
        if opening:
            # An unmarked block: skip it (markers quoted inside are text).
            k = i + 1
            while k < len(lines) and lines[k].rstrip() != opening.group(1):
                k += 1
            i = k + 1
            continue
        m = MARKER.match(line)
        if not m:
            if LOOSE.search(line):
                sys.exit(f"{path}:{i + 1}: malformed test marker: {line!r} "
                         "(expected '<!-- test: name -->' alone on its line)")
            i += 1
            continue
        name = m.group(1)
        if name in found:
            sys.exit(f"{path}:{i + 1}: duplicate test block name {name!r}")
        j = i + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        fence = FENCE.match(lines[j]) if j < len(lines) else None
        if not fence:
            sys.exit(f"{path}:{i + 1}: marker {name!r} is not followed by a fenced code block")
        close = fence.group(1)
        body = []
        k = j + 1
        while k < len(lines) and lines[k].rstrip() != close:
            body.append(lines[k])
            k += 1
        if k == len(lines):
            sys.exit(f"{path}:{j + 1}: block {name!r} has no closing {close}")
        found[name] = (fence.group(2) or "-", "\n".join(body) + "\n")
        i = k + 1
    return found


def main(argv):
    if len(argv) >= 2 and argv[0] == "list":
        for path in argv[1:]:
            for name, (lang, _) in blocks(path).items():
                print(path, name, lang)
        return
    if len(argv) >= 3 and argv[0] == "get":
        path, name, rest = argv[1], argv[2], argv[3:]
        subs = []
        while rest:
            if rest[0] != "--sub" or len(rest) < 3:
                sys.exit(__doc__)
            subs.append((rest[1], rest[2]))
            rest = rest[3:]
        found = blocks(path)
        if name not in found:
            sys.exit(f"{path}: no block marked '<!-- test: {name} -->'")
        text = found[name][1]
        for old, new in subs:
            text = text.replace(old, new)
        sys.stdout.write(text)
        return
    sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
