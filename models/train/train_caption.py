#!/usr/bin/python3
"""train_caption.py -- trains the bundled default caption model: a tiny
Tag2Text (official architecture and state-dict layout, tag2text_modules.py)
on the synthetic pictures of shapes.py and their true descriptions, and
writes what ram-convert needs. PyTorch is used for training only.

Usage (from the repository root, after models/default/ram_plus_default.pth
exists; seeded and reproducible, see models/default/caption.json for the
measured times on this 2-core machine). The committed model is five runs:
1,600 steps from the default model's Swin, 600 more on other pictures
(--seed 2001) at a lower rate, then 700 with Swin stage 1 trained too, then
1,000 reading 128 px pictures with 8-pixel patches (--patch 8, everything
trained), then 1,500 more of those with small shapes oversampled and the
shape term of the tagging loss weighted 3x; each measured better through C
(colour + shape + count 0.73, 0.77, 0.78, 0.80, 0.90):
    /usr/bin/python3 models/train/train_caption.py --out /tmp/phase1
    /usr/bin/python3 models/train/train_caption.py --resume /tmp/phase1/tag2text_default.pth \
        --seed 2001 --steps 600 --lr 5e-4 --out /tmp/phase2
    /usr/bin/python3 models/train/train_caption.py --resume /tmp/phase2/tag2text_default.pth \
        --seed 2002 --steps 700 --lr 4e-4 --frozen 1 --out /tmp/phase3
    /usr/bin/python3 models/train/train_caption.py --resume /tmp/phase3/tag2text_default.pth \
        --patch 8 --frozen 0 --seed 2004 --steps 1000 --lr 4e-4 --save-every 250 --out /tmp/phase4
    /usr/bin/python3 models/train/train_caption.py --resume /tmp/phase4/tag2text_default.pth \
        --patch 8 --frozen 0 --seed 2005 --steps 1500 --lr 3e-4 --small 0.5 --shape-weight 3 \
        --save-every 250
    make build/default_caption.ram      # ram-convert (the Makefile rule gives the flags)
    /usr/bin/python3 models/train/eval_caption.py   # figures through the C engine (SQL)

Writes:
    models/default/tag2text_default.pth     torch.save({'model': state_dict}) as the release
    models/default/tag2text_vocab.txt       the WordPiece vocabulary (the 5 BERT specials first)
    models/default/tag2text_threshold.txt   per-class thresholds (tags: ram_tag_list.txt)
    models/default/caption.json             config, training run, PyTorch figures

HOW IT WORKS
  The Swin starts from the first three stages of the default RAM++ model's
  image encoder (models/default/ram_plus_default.pth, trained on the same
  pictures): its last stage is 4x the size of the three others together and
  would not fit the 20 MB the bundled models may take. Everything is trained
  together, as the official Tag2Text is:
   1. tagging: the tagging head (label_embed queries, 2 cross-attention
      layers, GroupWiseLinear) gives one logit per tag of shapes.TAGS; BCE +
      a softmax within each group of exclusive tags.
   2. captioning: the tag encoder reads the picture's TRUE tag string (each
      tag dropped with probability --drop, so that the decoder learns to read
      the picture through the tag encoder's cross-attention too) and the
      decoder learns the canonical description (caption_text.caption()) after the
      official prompt "[DEC] a picture of", teacher-forced cross-entropy on
      the description and its [SEP] only (the prompt is not a target).
  The vocabulary is every word the tags and descriptions use (WordPiece
  without pieces: all of them are whole words), so the two 30,524-row
  embeddings of the release become a hundred rows.
  Colour x shape pairs in shapes.HELDOUT_PAIRS never occur in training.
  The weights are rounded to float16 (the committed file) and the
  thresholds chosen on a validation split (maximum F1, train_default.py's
  rule).
"""
import argparse
import json
import math
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import shapes  # noqa: E402
from caption_text import PROMPT, caption, vocabulary  # noqa: E402
from tag2text_modules import TAG_LEN, Tag2Text  # noqa: E402
from train_default import (choose_thresholds, param_groups, produce, to_input,  # noqa: E402
                           training_picture)

CONFIG = dict(
    image_size=64, patch_size=4, embed_dim=48, depths=[2, 2, 1], heads=[1, 2, 4], window=4,
    hidden=64, heads_bert=4, inter=128, enc_layers=2, tagger_layers=2, tagger_heads=4,
    dec_hidden=64, dec_heads=4, dec_inter=128, dec_layers=2, dec_max_pos=64,
    num_class=len(shapes.TAGS),
)
SEED_TRAIN, SEED_VAL, SEED_INIT = 2000, 21, 22

class Tok:
    """Whole-word tokenizer over vocabulary() (every training text is made of
    its words); [DEC] = len(vocab), [ENC] = len(vocab) + 1, as init_tokenizer."""

    def __init__(self, vocab):
        self.ids = {w: i for i, w in enumerate(vocab)}
        self.dec, self.enc = len(vocab), len(vocab) + 1
        self.sep, self.pad = self.ids["[SEP]"], self.ids["[PAD]"]
        self.size = len(vocab) + 2

    def words(self, text):
        return [self.ids[w] for w in text.replace("|", " | ").split()]

    def tag_ids(self, names):
        """The tag encoder's 40 ids and mask: [ENC] tags [SEP] [PAD]..."""
        ids = [self.enc] + self.words(" | ".join(names))[: TAG_LEN - 2] + [self.sep]
        mask = [1] * len(ids) + [0] * (TAG_LEN - len(ids))
        return ids + [self.pad] * (TAG_LEN - len(ids)), mask

    def caption_ids(self, text):
        return [self.dec] + self.words(PROMPT) + self.words(text) + [self.sep]


def tag_names(a, keep=None):
    idx = sorted(shapes.tag_indices(a))
    return [shapes.TAG_NAMES[i] for i in idx if keep is None or keep(i)]


def make_batch(args, tok, rng, step):
    pics = [training_picture(rng, small=args.small) for _ in range(args.batch)]
    x = np.stack([to_input(img, CONFIG["image_size"]) for img, _ in pics])
    attrs = [a for _, a in pics]
    y = np.zeros((args.batch, CONFIG["num_class"]), np.float32)
    tids, tmask, caps = [], [], []
    for b, a in enumerate(attrs):
        y[b, shapes.tag_indices(a)] = 1
        ids, mask = tok.tag_ids(tag_names(a, lambda i: rng.random() >= args.drop))
        tids.append(ids)
        tmask.append(mask)
        caps.append(tok.caption_ids(caption(a)))
    T = max(len(c) for c in caps)
    cap = np.full((args.batch, T), tok.pad, np.int64)
    for b, c in enumerate(caps):
        cap[b, : len(c)] = c
    return x, y, np.array(tids, np.int64), np.array(tmask, np.int64), cap, attrs


GROUP_COLS = [[i for i, (_, gg, _) in enumerate(shapes.TAGS) if gg == g] for g, _ in shapes.GROUPS]


def group_ce(logits, y, weights=None):
    """Mean over the groups of exclusive tags of the softmax cross-entropy
    within the group; weights[g] scales group g's term (None: all 1)."""
    loss = 0.0
    for g, cols in enumerate(GROUP_COLS):
        t = y[:, cols]
        rows = t.sum(1) > 0
        if rows.any():
            w = 1.0 if weights is None else weights[g]
            loss = loss + w * F.cross_entropy(logits[rows][:, cols], t[rows].argmax(1))
    return loss / len(GROUP_COLS)


def losses(m, tok, batch, shape_weight=1.0):
    x, y, tids, tmask, cap = (torch.from_numpy(v) for v in batch[:5])
    img = encode_image(m, x)
    logits = m.tag_logits(img)
    weights = None if shape_weight == 1.0 else [shape_weight if g == "shape" else 1.0
                                                 for g, _ in shapes.GROUPS]
    l_tag = F.binary_cross_entropy_with_logits(logits, y) + group_ce(logits, y, weights)
    enc = m.encode_tags(img, tids, tmask)
    out = m.decode(cap[:, :-1], enc)
    tgt = cap[:, 1:].clone()
    tgt[:, : len(tok.words(PROMPT)) - 1] = -100  # the prompt is given, not learned
    tgt[tgt == tok.pad] = -100
    l_cap = F.cross_entropy(out.reshape(-1, out.shape[-1]), tgt.reshape(-1), ignore_index=-100)
    return l_tag, l_cap


FROZEN = 2  # patch embedding and stages 0-1 keep the default model's weights (--frozen)


def encode_image(m, x):
    """The Swin forward with the frozen part outside autograd (a third of the
    step time saved; those stages already learned these pictures)."""
    ve = m.visual_encoder
    with torch.no_grad():
        h = ve.patch_embed(x) if FROZEN else None
        for layer in ve.layers[:FROZEN]:
            h = layer(h)
    if not FROZEN:
        h = ve.patch_embed(x)
    for layer in ve.layers[FROZEN:]:
        h = layer(h)
    h = ve.norm(h)
    return torch.cat([h.mean(1, keepdim=True), h], 1)


def widen_patch(w, patch):
    """A patch-embedding kernel for patches of `patch` pixels from a smaller
    one: each weight spread over a (patch / k)^2 block and divided by its size,
    so that the new embedding of a picture at (patch / k)x the resolution is the
    old embedding of the smaller picture (up to the resize); training then
    learns to use the finer detail."""
    k = w.shape[-1]
    if k == patch:
        return w
    f = patch // k
    return w.repeat_interleave(f, 2).repeat_interleave(f, 3) / (f * f)


def init_from_default(m, path):
    """Stages 0-2 and the patch embedding of the default RAM++ Swin."""
    sd = torch.load(path, map_location="cpu")["model"]
    own = m.visual_encoder.state_dict()
    n = 0
    for k in own:
        src = "visual_encoder." + k
        if k.startswith("norm.") or src not in sd or sd[src].shape != own[k].shape:
            continue
        own[k] = sd[src].float()
        n += 1
    m.visual_encoder.load_state_dict(own)
    return n


@torch.no_grad()
def greedy(m, tok, img, tags, n_max=30):
    """PyTorch greedy captions (a quick check while training; the figures that
    count come from the C engine's beam search, eval_caption.py)."""
    tids = torch.tensor([tok.tag_ids(t)[0] for t in tags])
    tmask = torch.tensor([tok.tag_ids(t)[1] for t in tags])
    enc = m.encode_tags(img, tids, tmask)
    ids = torch.tensor([[tok.dec] + tok.words(PROMPT)] * img.shape[0])
    for _ in range(n_max):
        nxt = m.decode(ids, enc)[:, -1].argmax(-1, keepdim=True)
        ids = torch.cat([ids, nxt], 1)
    inv = {i: w for w, i in tok.ids.items()}
    out = []
    for row in ids.tolist():
        words = []
        for i in row[4:]:
            if i == tok.sep:
                break
            words.append(inv.get(i, "?"))
        out.append(" ".join(words))
    return out


def held_out(seed, n, novel):
    rng = random.Random(seed)
    xs, attrs = [], []
    for _ in range(n):
        a = shapes.sample_attrs(rng, heldout=novel)
        w, h = rng.choice([(128, 128), (160, 128), (128, 160)])
        xs.append(to_input(shapes.render(a, rng, w, h), CONFIG["image_size"]))
        attrs.append(a)
    return np.stack(xs), attrs


def caption_scores(caps, attrs):
    """Fractions of captions naming the right colour, shape, count, and all three."""
    hit = {"colour": 0, "shape": 0, "count": 0, "colour+shape+count": 0}
    for c, a in zip(caps, attrs):
        w = c.split()
        ok = {"colour": a["colour"] in w,
              "shape": (shapes.PLURAL[a["shape"]] if a["count"] != "one" else a["shape"]) in w,
              "count": bool(w) and (w[0] in ("a", "an") if a["count"] == "one" else w[0] == a["count"])}
        for k, v in ok.items():
            hit[k] += v
        hit["colour+shape+count"] += all(ok.values())
    return {k: round(v / max(1, len(caps)), 4) for k, v in hit.items()}


@torch.no_grad()
def probs_of(m, x, bs=100):
    out = []
    for i in range(0, len(x), bs):
        out.append(torch.sigmoid(m.tag_logits(m.visual_encoder(torch.from_numpy(x[i:i + bs])))))
    return torch.cat(out).numpy()


@torch.no_grad()
def evaluate(m, tok, x, attrs, thr):
    p = probs_of(m, x)
    caps = []
    for i in range(0, len(x), 100):
        img = m.visual_encoder(torch.from_numpy(x[i:i + 100]))
        tags = [[shapes.TAG_NAMES[c] for c in range(len(thr)) if p[i + b, c] > thr[c]]
                for b in range(img.shape[0])]
        caps += greedy(m, tok, img, tags)
    return caption_scores(caps, attrs), caps


def main():
    global FROZEN
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=1600)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--drop", type=float, default=0.1, help="probability of dropping each true tag")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--val", type=int, default=600)
    ap.add_argument("--out", default="models/default")
    ap.add_argument("--init", default="models/default/ram_plus_default.pth")
    ap.add_argument("--resume", metavar="PTH", help="continue from a checkpoint this script wrote "
                    "(a second run with --seed 2001: more pictures, not the same ones)")
    ap.add_argument("--seed", type=int, default=SEED_TRAIN, help="training pictures' seed")
    ap.add_argument("--frozen", type=int, default=FROZEN, help="Swin stages kept as they are (with the "
                    "patch embedding; 0: train them all and the patch embedding)")
    ap.add_argument("--stop-at", type=int, help="end after this many steps of the --steps schedule "
                    "(the run that was stopped then, reproduced)")
    ap.add_argument("--save-every", type=int, default=0, metavar="N",
                    help="also save the float32 weights every N steps (out/step_N.pth), to stop early")
    ap.add_argument("--patch", type=int, help="Swin patch size (pixels; the image is 16 patches wide): "
                    "a larger patch reads the same tokens from a sharper picture (resumed 4-pixel "
                    "kernels are widened, widen_patch; train it with --frozen 0)")
    ap.add_argument("--small", type=float, default=0.0, metavar="P",
                    help="probability of making a training picture's one to three objects small "
                    "(small-shape oversampling; the held-out pictures keep shapes.py's mix)")
    ap.add_argument("--shape-weight", type=float, default=1.0, metavar="W",
                    help="weight of the shape group's softmax term in the tagging loss")
    args = ap.parse_args()
    FROZEN = args.frozen
    if args.patch:  # the same 16 x 16 tokens from a larger picture
        CONFIG["patch_size"], CONFIG["image_size"] = args.patch, 16 * args.patch
    torch.set_num_threads(args.threads)
    torch.manual_seed(SEED_INIT)
    vocab = vocabulary()
    tok = Tok(vocab)
    c = CONFIG
    m = Tag2Text(dict(image_size=c["image_size"], patch=c["patch_size"], embed_dim=c["embed_dim"],
                      depths=c["depths"], heads=c["heads"], window=c["window"]),
                 c["num_class"], tok.size, c["hidden"], c["heads_bert"], c["inter"], c["enc_layers"],
                 c["dec_hidden"], c["dec_heads"], c["dec_inter"], c["dec_layers"], c["tagger_layers"],
                 c["tagger_heads"], c["dec_max_pos"])
    if args.resume:
        own = m.state_dict()
        sd = torch.load(args.resume, map_location="cpu")["model"]
        sd = {k: v.float() if v.is_floating_point() else v for k, v in sd.items() if k in own}
        key = "visual_encoder.patch_embed.proj.weight"
        sd[key] = widen_patch(sd[key], c["patch_size"])
        m.load_state_dict(sd)
        n_init, args.init = len(own), args.resume
    else:
        n_init = init_from_default(m, args.init)
    n_params = sum(p.numel() for p in m.parameters())
    print(f"{n_params} parameters, {n_init} Swin tensors from {args.init}", flush=True)
    for mod in ([m.visual_encoder.patch_embed] if FROZEN else []) + list(m.visual_encoder.layers[:FROZEN]):
        mod.requires_grad_(False)
    opt = torch.optim.AdamW(param_groups([m], 0.05), lr=args.lr, betas=(0.9, 0.98))
    warm = max(1, args.steps // 30)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / max(1, args.steps)))))
    rng = random.Random(args.seed)
    t0, c0 = time.time(), time.process_time()
    log = []
    acc = [0.0, 0.0]
    for step, batch in enumerate(produce(lambda s: make_batch(args, tok, rng, s), args.steps, args.workers)):
        l_tag, l_cap = losses(m, tok, batch, args.shape_weight)
        loss = l_tag + l_cap
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 5.0)
        opt.step()
        sched.step()
        if args.save_every and (step + 1) % args.save_every == 0:
            os.makedirs(args.out, exist_ok=True)
            torch.save({"model": m.state_dict()}, os.path.join(args.out, "step_%d.pth" % (step + 1)))
        acc[0] += l_tag.item()
        acc[1] += l_cap.item()
        if (step + 1) % 50 == 0:
            e = {"step": step + 1, "tag": round(acc[0] / 50, 4), "caption": round(acc[1] / 50, 4),
                 "minutes": round((time.time() - t0) / 60, 2),
                 "cpu_minutes": round((time.process_time() - c0) / 60, 2)}
            log.append(e)
            print(json.dumps(e), flush=True)
            acc = [0.0, 0.0]
        if args.stop_at and step + 1 >= args.stop_at:
            break
    minutes = (time.time() - t0) / 60
    cpu_minutes = (time.process_time() - c0) / 60  # this process only (the batch maker is another)
    with torch.no_grad():  # the committed file is float16: measure exactly those weights
        for v in list(m.parameters()) + list(m.buffers()):
            if v.is_floating_point():
                v.copy_(v.half().float())
    m.eval()
    xv, av = held_out(SEED_VAL, args.val, False)
    gold = np.zeros((len(av), c["num_class"]), bool)
    for i, a in enumerate(av):
        gold[i, shapes.tag_indices(a)] = 1
    thr = choose_thresholds(probs_of(m, xv), gold)
    scores_val, caps = evaluate(m, tok, xv, av, thr)
    print("validation (PyTorch, greedy):", scores_val, flush=True)
    for cap_, a in list(zip(caps, av))[:8]:
        print("  ", cap_, "|", caption(a))
    od = args.out
    os.makedirs(od, exist_ok=True)
    halves = {}  # one float16 copy per tensor: tied keys stay one storage in the file
    sd = {k: halves.setdefault(v.data_ptr(), v.half() if v.is_floating_point() else v)
          for k, v in m.official_state_dict().items()}
    torch.save({"model": sd}, os.path.join(od, "tag2text_default.pth"))
    with open(os.path.join(od, "tag2text_vocab.txt"), "w") as f:
        f.write("\n".join(vocab) + "\n")
    with open(os.path.join(od, "tag2text_threshold.txt"), "w") as f:
        f.write("\n".join(f"{v:.2f}" for v in thr) + "\n")
    info = {"about": "The bundled default caption model: Tag2Text architecture trained on synthetic "
                     "shapes and their descriptions (models/train/train_caption.py).",
            "config": c, "vocab": len(vocab), "params": n_params,
            "convert_flags": ["--tags", "ram_tag_list.txt", "--thresholds", "tag2text_threshold.txt",
                              "--bert-vocab", "tag2text_vocab.txt", "--bert-heads", str(c["heads_bert"]),
                              "--tagger-heads", str(c["tagger_heads"]), "--image-size", str(c["image_size"])],
            "training": {"steps": args.steps, "batch": args.batch, "lr": args.lr, "drop": args.drop,
                         "threads": args.threads, "workers": args.workers, "frozen": args.frozen, "stop_at": args.stop_at,
                         "small": args.small, "shape_weight": args.shape_weight, "patch": args.patch, "minutes": round(minutes, 1),
                         "cpu_minutes_trainer": round(cpu_minutes, 1),
                         "torch": torch.__version__,
                         "seeds": {"train": args.seed, "val": SEED_VAL, "init": SEED_INIT},
                         "resumed_from": args.resume, "log": log},
            "weights": "float16",
            "pytorch_validation_greedy": dict(scores_val, n=len(av))}
    with open(os.path.join(od, "caption.json"), "w") as f:
        json.dump(info, f, indent=1)
        f.write("\n")
    print(f"training took {minutes:.1f} min", flush=True)


if __name__ == "__main__":
    main()
