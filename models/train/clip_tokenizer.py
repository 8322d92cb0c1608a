"""clip_tokenizer.py -- CLIP's byte-level BPE tokenizer in plain Python, for
training the bundled default model (models/default/).

Usage:
    tok = ClipTokenizer("models/bpe_simple_vocab_16e6.txt.gz")
    ids = tok.tokenize("two small blue triangles")   # [49406, ..., 49407]
    arr = tok.tokenize_batch(texts)                   # (n, 77) int64, zero padded

Written from ARCHITECTURE.md section 11 (clip.tokenize without ftfy), so that
the ids are the ones core/bpe.c computes for the same strings:

HOW IT WORKS
  1. Cleaning: html.unescape twice, strip, every run of whitespace -> one
     space, strip, str.lower().
  2. Pre-split (the official code uses the `regex` module, which Debian's
     python3 lacks; this is a hand-written scanner over unicodedata
     categories with the same alternatives in the same order): the two
     special tokens, the contractions 's 't 're 've 'm 'll 'd (matched case-
     insensitively), a run of letters (category L*), ONE number character
     (category N*), a run of characters that are neither whitespace, letter
     nor number.
  3. Each piece -> UTF-8 bytes -> one character per byte with the GPT-2 byte
     map; '</w>' appended to the last character; BPE merges by rank.
  4. ids: 0..255 byte characters in byte-map order, 256..511 the same with
     '</w>', 512.. merges in rank order, 49406 / 49407 the special tokens.
  5. [49406] + ids + [49407], truncated to 77 with the last id forced to 49407.

The test at the bottom (python3 clip_tokenizer.py) compares against the
golden clip.tokenize output in tests/data/golden/tokenizer.
"""
import gzip
import html
import unicodedata

SOT = 49406
EOT = 49407
CONTEXT = 77


def byte_map():
    """GPT-2 byte -> character map, and the byte order that defines ids 0..255."""
    keep = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    order = keep[:]
    chars = {b: chr(b) for b in keep}
    n = 0
    for b in range(256):
        if b not in chars:
            chars[b] = chr(256 + n)
            order.append(b)
            n += 1
    return chars, order


def _is_letter(c):
    return unicodedata.category(c).startswith("L")


def _is_number(c):
    return unicodedata.category(c).startswith("N")


def _is_space(c):
    # regex's \s is the Unicode White_Space property: Python's isspace()
    # minus the separators U+001C..U+001F.
    return c.isspace() and c not in "\x1c\x1d\x1e\x1f"


# U+0345 (combining ypogegrammeni) case-folds to a Greek iota, so under the
# official IGNORECASE pattern it is neither in the letter run nor in the
# "not letter" class: it matches no alternative and is dropped.
_UNMATCHED = "\u0345"


_SPECIALS = ("<|startoftext|>", "<|endoftext|>")
_CONTRACTIONS = ("'s", "'t", "'re", "'ve", "'m", "'ll", "'d")


def _ci_equal(a, b):
    # regex IGNORECASE uses simple case folding; for the ASCII contraction
    # letters that also admits U+017F (long s) for 's' and U+212A (Kelvin)
    # for 'k' (not used here).
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if x == y:
            continue
        if y == "s" and x in ("S", "\u017f"):
            continue
        if x.lower() == y:
            continue
        return False
    return True


def pre_split(text):
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        hit = None
        for s in _SPECIALS:
            if _ci_equal(text[i:i + len(s)], s):
                hit = text[i:i + len(s)]
                break
        if hit is None and c == "'":
            for s in _CONTRACTIONS:
                if _ci_equal(text[i:i + len(s)], s):
                    hit = text[i:i + len(s)]
                    break
        if hit is not None:
            out.append(hit)
            i += len(hit)
            continue
        if _is_letter(c):
            j = i + 1
            while j < n and _is_letter(text[j]):
                j += 1
            out.append(text[i:j])
            i = j
        elif _is_number(c):
            out.append(c)
            i += 1
        elif _is_space(c) or c in _UNMATCHED:
            i += 1
        else:
            j = i + 1
            while j < n and not (_is_space(text[j]) or _is_letter(text[j]) or _is_number(text[j])
                                 or text[j] in _UNMATCHED):
                # a special token or contraction starting inside the run is
                # still matched by the earlier alternatives only at a new
                # match position, so the run simply continues (as regex does)
                j += 1
            out.append(text[i:j])
            i = j
    return out


def clean(text):
    text = html.unescape(html.unescape(text)).strip()
    out = []
    for c in text:
        if _is_space(c):
            if not out or out[-1] != " ":
                out.append(" ")
        else:
            out.append(c)
    return "".join(out).strip().lower()


class ClipTokenizer:
    def __init__(self, bpe_path):
        with gzip.open(bpe_path, "rt", encoding="utf-8") as f:
            lines = f.read().split("\n")
        merges = [tuple(l.split()) for l in lines[1:49152 - 256 - 2 + 1]]
        self.chars, order = byte_map()
        vocab = [self.chars[b] for b in order]
        vocab += [v + "</w>" for v in vocab]
        vocab += ["".join(m) for m in merges]
        vocab += ["<|startoftext|>", "<|endoftext|>"]
        self.encoder = {v: i for i, v in enumerate(vocab)}
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.cache = {"<|startoftext|>": "<|startoftext|>", "<|endoftext|>": "<|endoftext|>"}
        assert len(vocab) == 49408

    def bpe(self, piece):
        if piece in self.cache:
            return self.cache[piece]
        word = list(piece[:-1]) + [piece[-1] + "</w>"]
        while len(word) > 1:
            pairs = {(word[k], word[k + 1]) for k in range(len(word) - 1)}
            best = min(pairs, key=lambda p: self.ranks.get(p, 1 << 30))
            if best not in self.ranks:
                break
            a, b = best
            new = []
            k = 0
            while k < len(word):
                if k < len(word) - 1 and word[k] == a and word[k + 1] == b:
                    new.append(a + b)
                    k += 2
                else:
                    new.append(word[k])
                    k += 1
            word = new
        out = " ".join(word)
        self.cache[piece] = out
        return out

    def encode(self, text):
        ids = []
        for piece in pre_split(clean(text)):
            mapped = "".join(self.chars[b] for b in piece.encode("utf-8"))
            ids.extend(self.encoder[t] for t in self.bpe(mapped).split(" "))
        return ids

    def tokenize(self, text):
        ids = [SOT] + self.encode(text) + [EOT]
        if len(ids) > CONTEXT:
            ids = ids[:CONTEXT]
            ids[-1] = EOT
        return ids

    def tokenize_batch(self, texts):
        import numpy as np
        arr = np.zeros((len(texts), CONTEXT), dtype=np.int64)
        for r, t in enumerate(texts):
            ids = self.tokenize(t)
            arr[r, :len(ids)] = ids
        return arr


if __name__ == "__main__":
    import json
    import os
    import sys
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    tok = ClipTokenizer(os.path.join(root, "models", "bpe_simple_vocab_16e6.txt.gz"))
    details = json.load(open(os.path.join(root, "tests/data/golden/tokenizer/tokenizer_details.json")))
    bad = 0
    n = 0
    for d in details:
        if not d["same_without_ftfy"]:
            continue
        n += 1
        got = tok.tokenize(d["text"])
        if got != d["ids"]:
            bad += 1
            print("MISMATCH", repr(d["text"]), got[:12], d["ids"][:12])
    extra = json.load(open(os.path.join(root, "tests/data/tokenizer_extra.json")))
    for d in extra:
        if "text" not in d:
            continue  # invalid UTF-8 byte strings: not representable as str
        n += 1
        got = tok.tokenize(d["text"])
        if got != d["ids"]:
            bad += 1
            print("MISMATCH(extra)", repr(d["text"]), got[:12], d["ids"][:12])
    print(f"{n - bad}/{n} golden strings tokenized identically")
    sys.exit(1 if bad else 0)
