#!/usr/bin/env python3
"""Greedy set cover over edge coverage (COV lines of a libFuzzer merge control file): keeps the
fewest files that cover every edge the corpus covers, smallest first among equals, within
MAX_FILES and MAX_BYTES. usage: select.py CONTROL_FILE OUT_DIR"""
import os, shutil, sys
MAX_FILES, MAX_BYTES = 200, 2_000_000
ctl, out = sys.argv[1], sys.argv[2]
lines = open(ctl).read().splitlines()
n = int(lines[0]); files = lines[2:2 + n]
cov = {}
for line in lines[2 + n:]:
    parts = line.split()
    if parts and parts[0] == "COV":
        cov[int(parts[1])] = set(parts[2:])
size = {i: os.path.getsize(files[i]) for i in cov}
covered, chosen, total = set(), [], 0
all_edges = set().union(*cov.values()) if cov else set()
while len(chosen) < MAX_FILES:
    best = max((i for i in cov if i not in chosen and size[i] + total <= MAX_BYTES),
               key=lambda i: (len(cov[i] - covered), -size[i]), default=None)
    if best is None or not (cov[best] - covered):
        break
    chosen.append(best); covered |= cov[best]; total += size[best]
os.makedirs(out, exist_ok=True)
for i in chosen:
    shutil.copy(files[i], out)
print(f"{len(chosen)} files, {total} bytes, {len(covered)}/{len(all_edges)} edges")
