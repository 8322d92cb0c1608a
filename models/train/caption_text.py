"""caption_text.py -- the words of the bundled default caption model: the
canonical description of a picture of shapes.py (what the model learns to
write) and the vocabulary it is written in. Shared by train_caption.py
(training) and eval_caption.py (checking the C engine's captions).

    caption(attrs)   # "two large striped blue triangles on a white background"
    vocabulary()     # the 5 BERT specials, then every word, sorted
"""
import shapes

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
PROMPT = "a picture of"

COUNT_WORD = {"two": "two", "three": "three", "many": "many"}
POS_WORD = {"left": "on the left", "right": "on the right", "top": "at the top",
            "bottom": "at the bottom", "center": "in the center",
            "top left": "in the top left corner", "top right": "in the top right corner",
            "bottom left": "in the bottom left corner", "bottom right": "in the bottom right corner"}


def caption(a):
    """The canonical description: count, size, pattern (unless plain),
    colour, shape, position (single objects), background, e.g.
    "two large striped blue triangles on a white background"."""
    words = [a["size"]]
    if a["pattern"] != "plain":
        words.append(a["pattern"])
    words.append(a["colour"])
    words.append(shapes.PLURAL[a["shape"]] if a["count"] != "one" else a["shape"])
    if a["count"] == "one":
        words.insert(0, "an" if words[0][0] in "aeiou" else "a")
    else:
        words.insert(0, COUNT_WORD[a["count"]])
    if a.get("position"):
        words.append(POS_WORD[a["position"]])
    words.append("on a %s background" % a["background"])
    return " ".join(words)


def vocabulary():
    words = set(PROMPT.split()) | {"|", "an"}
    for name in shapes.TAG_NAMES:
        words |= set(name.split())
    words |= set(shapes.PLURAL.values()) | set(COUNT_WORD.values())
    for p in POS_WORD.values():
        words |= set(p.split())
    words |= {"on", "a", "background"}
    return SPECIALS + sorted(words)
