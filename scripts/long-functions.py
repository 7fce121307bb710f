#!/usr/bin/env python3
"""List the functions outside tests that are longer than a limit (100 lines by default).

Walks src/**/*.rs (or the paths given), finds every `fn` item with a body and measures it from
the line of its `fn` keyword to the line of its closing brace. Test code is left out: files named
tests.rs, any item marked `#[cfg(test)]` (usually a `mod tests { ... }`), and the file of a
module declared `#[cfg(test)] mod name;` (such as `rules/testkit.rs`).

Prints `path:line name length` for each function over the limit, longest first, and exits 1
when there is one, 0 otherwise. `--all` prints every function with its length instead (and
still exits 1 when one is over the limit).

Usage: scripts/long-functions.py [--limit N] [--all] [PATH ...]
"""

import argparse
import os
import re
import signal
import sys

IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
CFG_TEST = re.compile(r"#\s*\[\s*cfg\s*\(\s*test\s*\)\s*\]")
TEST_MOD_DECL = re.compile(
    r"#\s*\[\s*cfg\s*\(\s*test\s*\)\s*\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+([A-Za-z_][A-Za-z0-9_]*)\s*;"
)


def blank_out(source):
    """The source with comments, strings and char literals replaced by spaces (newlines kept),
    so that braces and keywords inside them are not seen."""
    out = list(source)
    i, n = 0, len(source)

    def blank(start, end):
        for k in range(start, end):
            if out[k] != "\n":
                out[k] = " "

    while i < n:
        c = source[i]
        if source.startswith("//", i):
            end = source.find("\n", i)
            end = n if end < 0 else end
            blank(i, end)
            i = end
        elif source.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if source.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif source.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            blank(i, j)
            i = j
        elif c in "rb" and (i == 0 or not (source[i - 1].isalnum() or source[i - 1] == "_")):
            # raw strings r"..", r#".."#, br".." and byte strings b".."
            m = re.match(r'(br|rb|r|b)(#*)"', source[i:i + 260])
            if m and ("r" in m.group(1) or not m.group(2)):
                prefix, hashes = m.group(1), m.group(2)
                j = i + m.end()
                if "r" in prefix:
                    close = '"' + hashes
                    end = source.find(close, j)
                    end = n if end < 0 else end + len(close)
                else:
                    end = skip_string(source, j)
                blank(i, end)
                i = end
            elif source.startswith("b'", i):
                end = skip_char(source, i + 1)
                blank(i, end)
                i = end
            else:
                i += 1
        elif c == '"':
            end = skip_string(source, i + 1)
            blank(i, end)
            i = end
        elif c == "'":
            end = skip_char(source, i)
            if end > i + 1:
                blank(i, end)
                i = end
            else:
                i += 1  # a lifetime or label
        else:
            i += 1
    return "".join(out)


def skip_string(source, j):
    """Index just past the closing quote of a string whose body starts at j."""
    n = len(source)
    while j < n:
        if source[j] == "\\":
            j += 2
        elif source[j] == '"':
            return j + 1
        else:
            j += 1
    return n


def skip_char(source, i):
    """Index just past a char literal starting with the quote at i, or i + 1 for a lifetime."""
    if source.startswith("\\", i + 1):
        end = source.find("'", i + 3)
        return i + 1 if end < 0 else end + 1
    if i + 2 < len(source) and source[i + 2] == "'":
        return i + 3
    return i + 1


def matching_brace(code, open_index):
    depth = 0
    for k in range(open_index, len(code)):
        if code[k] == "{":
            depth += 1
        elif code[k] == "}":
            depth -= 1
            if depth == 0:
                return k
    return len(code) - 1


def item_end(code, start):
    """End of the item starting at start: its matching `}` or its `;`, whichever comes first
    outside parentheses and brackets."""
    depth = 0
    for k in range(start, len(code)):
        ch = code[k]
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif depth == 0 and ch == ";":
            return k
        elif depth == 0 and ch == "{":
            return matching_brace(code, k)
    return len(code) - 1


def test_ranges(code):
    """Character ranges of items marked #[cfg(test)]."""
    ranges = []
    for m in CFG_TEST.finditer(code):
        ranges.append((m.start(), item_end(code, m.end())))
    return ranges


def functions(path):
    """(line, name, length) for every fn with a body outside test code."""
    with open(path, encoding="utf-8") as f:
        source = f.read()
    code = blank_out(source)
    excluded = test_ranges(code)
    found = []
    for m in re.finditer(r"\bfn\b", code):
        if any(a <= m.start() <= b for a, b in excluded):
            continue
        rest = code[m.end():]
        name_match = IDENT.match(rest.lstrip())
        if not name_match:
            continue  # `fn(` pointer types and macro-generated names
        end = item_end(code, m.end())
        if code[end] != "}":
            continue  # a declaration without a body
        first = code.count("\n", 0, m.start()) + 1
        last = code.count("\n", 0, end) + 1
        found.append((first, name_match.group(0), last - first + 1))
    return found


def test_module_files(path):
    """The files of the modules that `path` declares `#[cfg(test)] mod name;`."""
    with open(path, encoding="utf-8") as f:
        code = blank_out(f.read())
    directory, file_name = os.path.split(path)
    if file_name not in ("mod.rs", "lib.rs", "main.rs"):
        directory = os.path.join(directory, file_name[:-3])
    found = set()
    for m in TEST_MOD_DECL.finditer(code):
        name = m.group(1)
        found.add(os.path.normpath(os.path.join(directory, name + ".rs")))
        found.add(os.path.normpath(os.path.join(directory, name, "mod.rs")))
    return found


def rust_files(paths):
    candidates = []
    for root in paths:
        if os.path.isfile(root):
            candidates.append(root)
            continue
        for directory, dirs, files in os.walk(root):
            dirs.sort()
            for name in sorted(files):
                if name.endswith(".rs") and name != "tests.rs":
                    candidates.append(os.path.join(directory, name))
    test_files = set()
    for path in candidates:
        test_files |= test_module_files(path)
    return [path for path in candidates if os.path.normpath(path) not in test_files]


def main():
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # quiet under `| head`
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=100, help="longest allowed (lines)")
    parser.add_argument("--all", action="store_true", help="print every function")
    parser.add_argument("paths", nargs="*", help="files or folders (default: src)")
    args = parser.parse_args()
    if not args.paths:
        here = os.path.dirname(os.path.abspath(__file__))
        args.paths = [os.path.relpath(os.path.join(here, "..", "src"))]

    rows = []
    for path in rust_files(args.paths):
        rows.extend((path, line, name, length) for line, name, length in functions(path))
    rows.sort(key=lambda row: (-row[3], row[0], row[1]))
    too_long = [row for row in rows if row[3] > args.limit]
    for path, line, name, length in rows if args.all else too_long:
        print(f"{path}:{line} {name} {length}")
    return 1 if too_long else 0


if __name__ == "__main__":
    sys.exit(main())
