"""c_tables.py -- what tools/gen_unicode_tables.py and tools/gen_wordpiece_tables.py
share: printing a C array's initialisers wrapped at a line width, and tables
of code-point ranges (sorted, inclusive, disjoint). Python 3 standard library
only; imported by those scripts (run from the repository root).
"""


def print_wrapped(items, width):
    """Prints the initialisers items (each beginning with a space) three
    spaces in, as many per line as fit in width characters."""
    line = "   "
    for item in items:
        if len(line) + len(item) > width:
            print(line)
            line = "   "
        line += item
    print(line)


def ranges(cps):
    """The code points cps (any iterable) as sorted [lo, hi] runs."""
    out = []
    for c in sorted(cps):
        if out and out[-1][1] == c - 1:
            out[-1][1] = c
        else:
            out.append([c, c])
    return out


def emit_ranges(struct, name, comment, rs, width):
    """Prints `static const struct STRUCT NAME[n] = {{lo, hi}, ...};` of the
    runs rs (from ranges()), under a comment counting them."""
    n = sum(hi - lo + 1 for lo, hi in rs)
    print("/* %s: %d ranges, %d code points. */" % (comment, len(rs), n))
    print("static const struct %s %s[%d] = {" % (struct, name, len(rs)))
    print_wrapped([" {0x%X, 0x%X}," % (lo, hi) for lo, hi in rs], width)
    print("};")
    print()
