#!/usr/bin/env python3
"""gen_unicode_tables.py -- writes core/unicode_tables.h, the data tables the
CLIP tokenizer (core/bpe.c) needs to reproduce Python's text handling in C.

Usage (from the repository root; Python 3 standard library only):

    python3 tools/gen_unicode_tables.py [UCD_DIR] > core/unicode_tables.h

UCD_DIR defaults to /usr/share/unicode (Debian package `unicode-data`).

What is generated, and from where:
  * \\p{L}, \\p{N}: general categories from UnicodeData.txt. The reference
    tokenizer runs the `regex` module; Debian's python3-regex 2022.10.31 (the
    one the golden was made with) agrees with UCD 15.0 on every code point.
  * regex \\s: the White_Space property (PropList.txt). That is what the
    `regex` module matches with \\s; it differs from str.isspace(), which also
    holds for U+001C..U+001F.
  * str.isspace() (used by str.strip()): bidi class WS/B/S or category Zs.
  * Python's full str.lower(): simple lowercase of UnicodeData.txt overridden
    by the unconditional entries of SpecialCasing.txt (the only multi-code-point
    one is U+0130). Final sigma is context dependent and done in C with the
    Cased and Case_Ignorable properties, as CPython's unicodeobject.c does.
    That Python's own (older) Unicode version is the reference here: Cased
    comes from str.islower()/isupper() and category Lt, Case_Ignorable from
    DerivedCoreProperties.txt restricted to the code points Python assigns.
  * HTML: the html5 named character references of Python's html.entities and
    the numeric-reference fix-ups of html.unescape (the charref table and the
    set of code points that unescape drops). These come from the running
    Python's standard library.

The script cross-checks the generated lowercase and isspace tables against the
running Python (which may use an older Unicode version) and reports
differences on stderr.
"""

import html
import html.entities
import os
import sys
import unicodedata

from c_tables import emit_ranges as emit_range_table, print_wrapped, ranges

UCD = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/unicode"
MAXCP = 0x110000


def read_ucd_version():
    with open(os.path.join(UCD, "DerivedCoreProperties.txt"), encoding="utf-8") as f:
        first = f.readline()
    # "# DerivedCoreProperties-15.0.0.txt"
    return first.split("-")[1].rsplit(".", 1)[0]


def unicode_data():
    """cp -> (category, bidi, simple_lower) for every assigned code point."""
    out = {}
    first = None
    with open(os.path.join(UCD, "UnicodeData.txt"), encoding="utf-8") as f:
        for line in f:
            fld = line.rstrip("\n").split(";")
            cp = int(fld[0], 16)
            rec = (fld[2], fld[4], int(fld[13], 16) if fld[13] else None)
            if fld[1].endswith(", First>"):
                first = cp
                continue
            if fld[1].endswith(", Last>"):
                for c in range(first, cp + 1):
                    out[c] = rec
                continue
            out[cp] = rec
    return out


def prop_file(name, prop):
    s = set()
    with open(os.path.join(UCD, name), encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            rng, p = [x.strip() for x in line.split(";")[:2]]
            if p != prop:
                continue
            if ".." in rng:
                a, b = rng.split("..")
                s.update(range(int(a, 16), int(b, 16) + 1))
            else:
                s.add(int(rng, 16))
    return s


def special_lower():
    """Unconditional SpecialCasing lowercase mappings: cp -> [cps]."""
    out = {}
    with open(os.path.join(UCD, "SpecialCasing.txt"), encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            fld = [x.strip() for x in line.split(";")]
            if len(fld) > 5 and fld[4]:
                continue  # conditional (language or context): skipped like CPython
            cp = int(fld[0], 16)
            out[cp] = [int(x, 16) for x in fld[1].split()]
    return out


def emit_ranges(name, cps, comment):
    emit_range_table("ram_uc_range", name, comment, ranges(cps), 78)


def lower_runs(single):
    """Compress cp -> lower (one code point each) into arithmetic runs."""
    items = sorted(single.items())
    runs = []  # [start, count, stride, delta]
    for cp, lo in items:
        d = lo - cp
        if runs:
            s, n, st, dd = runs[-1]
            if dd == d:
                if n == 1 and cp - s in (1, 2):
                    runs[-1][1] = 2
                    runs[-1][2] = cp - s
                    continue
                if n > 1 and cp == s + n * st:
                    runs[-1][1] += 1
                    continue
        runs.append([cp, 1, 1, d])
    return runs


def main():
    ver = read_ucd_version()
    ud = unicode_data()
    letters = {c for c, r in ud.items() if r[0].startswith("L")}
    numbers = {c for c, r in ud.items() if r[0].startswith("N")}
    white = prop_file("PropList.txt", "White_Space")
    pyspace = {c for c, r in ud.items() if r[1] in ("WS", "B", "S") or r[0] == "Zs"}
    # str.lower() is the running Python's (its own Unicode version), so the
    # final-sigma properties are restricted to the code points it knows.
    # Cased = Lowercase | Uppercase | Lt, which Python exposes per character
    # (UCD 15 added Other_Lowercase to a few code points Python 3.11 knows).
    py_assigned = {c for c in range(MAXCP) if unicodedata.category(chr(c)) != "Cn"}
    cased = {c for c in py_assigned if not 0xD800 <= c <= 0xDFFF and (
        chr(c).islower() or chr(c).isupper() or unicodedata.category(chr(c)) == "Lt")}
    ignorable = prop_file("DerivedCoreProperties.txt", "Case_Ignorable") & py_assigned

    lower = {}
    for c, r in ud.items():
        if r[2] is not None and r[2] != c:
            lower[c] = [r[2]]
    for c, m in special_lower().items():
        if m == [c]:
            lower.pop(c, None)
        else:
            lower[c] = m
    single = {c: m[0] for c, m in lower.items() if len(m) == 1}
    multi = {c: m for c, m in lower.items() if len(m) > 1}
    max_exp = max([len(m) for m in multi.values()] + [1])
    runs = lower_runs(single)

    # Cross-checks against the running Python (informational).
    py_ver = unicodedata.unidata_version
    bad_lower = []
    for c in range(MAXCP):
        if 0xD800 <= c <= 0xDFFF or c == 0x3A3:
            continue
        if unicodedata.category(chr(c)) == "Cn":
            continue
        want = [ord(x) for x in chr(c).lower()]
        got = lower.get(c, [c])
        if want != got:
            bad_lower.append(c)
    bad_space = [c for c in range(MAXCP) if (c in pyspace) != chr(c).isspace()]
    sys.stderr.write("UCD %s, Python unicodedata %s: lower() differences %d %s, "
                     "isspace differences %d %s\n"
                     % (ver, py_ver, len(bad_lower), [hex(c) for c in bad_lower[:10]],
                        len(bad_space), [hex(c) for c in bad_space[:10]]))

    ents = sorted(html.entities.html5.items(), key=lambda kv: kv[0].encode())
    max_name = max(len(k) for k, _ in ents)
    max_val = max(len(v) for _, v in ents)
    charrefs = sorted(html._invalid_charrefs.items())
    dropped = sorted(html._invalid_codepoints)

    print("/*")
    print("** unicode_tables.h -- GENERATED by tools/gen_unicode_tables.py; do not edit.")
    print("** The character data the CLIP tokenizer (bpe.c, its only includer) needs to")
    print("** reproduce Python's regex \\p{L}/\\p{N}/\\s, str.isspace(), str.lower() and")
    print("** html.unescape(). Categories: Unicode %s (Debian unicode-data, as the regex" % ver)
    print("** module the reference used); lowercase and final-sigma data: as Python %d.%d's"
          % sys.version_info[:2])
    print("** str.lower() (Unicode %s); HTML tables from that Python's html module." % py_ver)
    print("** Range tables are sorted, inclusive, disjoint.")
    print("*/")
    print("#ifndef RAM_UNICODE_TABLES_H")
    print("#define RAM_UNICODE_TABLES_H")
    print()
    print("#include <stdint.h>")
    print()
    print('#define RAM_UC_VERSION "%s"' % ver)
    print()
    print("struct ram_uc_range { uint32_t lo, hi; };")
    print()
    emit_ranges("ram_uc_letter", letters, "\\p{L}: general category L*")
    emit_ranges("ram_uc_number", numbers, "\\p{N}: general category N*")
    emit_ranges("ram_uc_white", white, "regex \\s: White_Space")
    emit_ranges("ram_uc_pyspace", pyspace, "str.isspace(): bidi WS/B/S or Zs")
    emit_ranges("ram_uc_cased", cased, "Cased (final sigma rule)")
    emit_ranges("ram_uc_case_ignorable", ignorable, "Case_Ignorable (final sigma rule)")

    print("/* Lowercase, one code point each: for cp in {start + k*stride : k < count},")
    print("** lower(cp) = cp + delta. %d mappings in %d runs. */" % (len(single), len(runs)))
    print("struct ram_uc_lower_run { uint32_t start; uint16_t count; uint16_t stride; int32_t delta; };")
    print("static const struct ram_uc_lower_run ram_uc_lower[%d] = {" % len(runs))
    print_wrapped([" {0x%X, %d, %d, %d}," % (s, n, st, d) for s, n, st, d in runs], 78)
    print("};")
    print()
    print("/* Lowercase mappings to several code points (SpecialCasing, unconditional). */")
    print("#define RAM_UC_LOWER_MAX %d" % max_exp)
    print("struct ram_uc_lower_multi { uint32_t cp; uint32_t to[RAM_UC_LOWER_MAX]; };")
    print("static const struct ram_uc_lower_multi ram_uc_lower_multi[%d] = {" % len(multi))
    for c, m in sorted(multi.items()):
        print("    {0x%X, {%s}}," % (c, ", ".join("0x%X" % x for x in m + [0] * (max_exp - len(m)))))
    print("};")
    print()
    print("/* html.entities.html5: %d names (with their ';' where HTML5 has one; the" % len(ents))
    print("** legacy names also without), sorted bytewise; each maps to 1 or 2 code points. */")
    print("#define RAM_HTML_NAME_MAX %d" % max_name)
    print("struct ram_html_entity { const char *name; uint32_t cp[2]; };")
    print("static const struct ram_html_entity ram_html_entities[%d] = {" % len(ents))
    assert max_val <= 2
    for k, v in ents:
        cps = [ord(x) for x in v] + [0] * (2 - len(v))
        print('    {"%s", {0x%X, 0x%X}},' % (k, cps[0], cps[1]))
    print("};")
    print()
    print("/* html.unescape: numeric references replaced by another code point. */")
    print("struct ram_html_charref { uint32_t num, cp; };")
    print("static const struct ram_html_charref ram_html_charrefs[%d] = {" % len(charrefs))
    assert all(len(v) == 1 for _, v in charrefs)
    print_wrapped([" {0x%X, 0x%X}," % (num, ord(v)) for num, v in charrefs], 78)
    print("};")
    print()
    emit_ranges("ram_html_dropped", dropped,
                "html.unescape: numeric references that produce nothing")
    print("#endif /* RAM_UNICODE_TABLES_H */")


if __name__ == "__main__":
    main()
