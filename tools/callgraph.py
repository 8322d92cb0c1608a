#!/usr/bin/env python3
"""File-level call graph of ext/ and core/ from the symbols of their objects
(who defines, who uses), and any circle in it; exits 1 when there is one.

    tools/callgraph.py [OBJDIR [PREFIX]]

OBJDIR holds the objects as OBJDIR/core/*.o, OBJDIR/ext/*.o (default
build/obj; make lint passes build/lint); with PREFIX (e.g. ext/) only
circles among files under it count."""
import glob, os, subprocess, sys

objdir = sys.argv[1] if len(sys.argv) > 1 else "build/obj"
prefix = sys.argv[2] if len(sys.argv) > 2 else ""
defs, uses = {}, {}
for o in sorted(glob.glob(f"{objdir}/ext/*.o") + glob.glob(f"{objdir}/core/*.o")):
    f = os.path.relpath(o, objdir)[:-2] + ".c"
    if not os.path.exists(f):  # an object left from a file since removed
        continue
    uses[f] = set()
    for line in subprocess.run(["nm", o], capture_output=True, text=True).stdout.splitlines():
        p = line.split()
        if len(p) == 3 and p[1] in "TDBR":
            defs[p[2]] = f
        elif len(p) == 2 and p[0] == "U" and p[1] != "sqlite3_api":
            # sqlite3_api: the API table every file reads (SQLITE_EXTENSION_INIT3),
            # defined by ram.c's INIT1: data set once at load, not a call.
            uses[f].add(p[1])
graph = {f: sorted({defs[s] for s in u if s in defs and defs[s] != f}) for f, u in uses.items()}
for f in sorted(graph):
    print(f"{f:28s} -> {' '.join(graph[f])}")
# circles: strongly connected components of more than one file
idx, low, stack, on, sccs, n = {}, {}, [], set(), [], [0]
def visit(v):
    idx[v] = low[v] = n[0]; n[0] += 1; stack.append(v); on.add(v)
    for w in graph[v]:
        if w not in idx: visit(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], idx[w])
    if low[v] == idx[v]:
        c = []
        while True:
            w = stack.pop(); on.discard(w); c.append(w)
            if w == v: break
        c = [x for x in c if x.startswith(prefix)]
        if len(c) > 1: sccs.append(sorted(c))
sys.setrecursionlimit(10000)
for v in graph:
    if v not in idx: visit(v)
print("circles:", sccs if sccs else "none")
sys.exit(1 if sccs else 0)
