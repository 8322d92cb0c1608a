#!/usr/bin/python3
"""train_default.py -- trains the bundled default model: a small RAM++ (exact
official architecture and state-dict layout) with a small CLIP text tower,
on the synthetic pictures of shapes.py, and writes everything the C side
needs. PyTorch is used for training only.

Usage (from the repository root; phase 1 7500 steps, phase 2 800 steps: the
whole script, evaluation included, took 46.5 minutes on this 2-core machine,
see models/default/config.json):
    /usr/bin/python3 models/train/train_default.py
    /usr/bin/python3 models/train/train_default.py --resume DIR   # phase 2 on DIR's phase 1
    /usr/bin/python3 models/train/train_default.py --eval-only   # re-measure a saved model
    make build/default.ram         # ram-convert (the Makefile rule gives the flags)

Writes:
    models/default/ram_plus_default.pth   torch.save({'model': state_dict}) as the official files
    models/default/clip_text_default.pth  the text tower's state dict, OpenAI CLIP names
    models/default/ram_tag_list.txt, ram_tag_list_chinese.txt, ram_tag_list_threshold.txt
    models/default/tag_descriptions.json  the 6 descriptions per tag behind label_embed
    models/default/config.json            config, training run and measured quality
    models/default/train_log_phase1.jsonl, train_log_phase2.jsonl   every logged line
    tests/data/heldout/                   held-out pictures, labels, open-set candidates and
                                          PyTorch's probabilities, for tests/test_default_model.c

SPEED: torch runs on ONE thread (--threads 1): this model's tensors are so
small that a second intra-op thread made each step about 3x slower here
(0.70 s against 0.24 s, measured). The second core makes the batches
instead: pictures, targets and tokenization run in a forked child process
(--workers 1, produce()), in the same order with the same random generator,
so the trained weights are the same with --workers 0.

HOW IT WORKS
  Phase 1: every step draws 32 fresh pictures (shapes.py; random sizes,
  resized to the model's 64 px input with PIL's bilinear exactly as the
  official preprocessing, some JPEG-compressed; for the first 20% of the
  steps 60% of them show one large object, fading out by 40%: whole
  silhouettes teach a from-scratch Swin shapes sooner) and trains the
  objectives RAM++ uses together:
   1. tagging: label_embed (41 x 6 rows) is learned directly, starting from
      the text tower's embeddings of each tag's 6 descriptions, and the text
      tower is pulled onto it (cosine "align" loss); the RAM++ head (CLS
      reweighting, wordvec_proj, cross-attention decoder, fc) gives one logit
      per tag; BCE + a softmax within each group of exclusive tags, plus
      training-only auxiliary heads on the image tokens (discarded at save).
   2. open-set phrases: noun phrases per picture ("two small blue
      triangles", "a striped star at the top", hard negatives with one
      attribute changed) go through the same head as single-description
      classes, labelled by whether each picture satisfies them; BCE.
   3. image-text alignment: InfoNCE between the image CLS embedding
      (image_proj row 0) and the caption embeddings, temperature = the text
      tower's logit_scale.
  Phase 2 (finetune()): open-set ranking against the tests' kind of 10
  candidates, with the phase-1 losses kept.
  Colour x shape pairs in shapes.HELDOUT_PAIRS never occur in training
  pictures or texts; the compositional test uses only them.
  At the end the weights are rounded to float16 (the committed files),
  thresholds are chosen per class on a validation split (maximum F1, 2
  decimals, ties -> middle of the best interval), and the held-out sets
  (other seeds) are written and measured from the files on disk.
"""
import argparse
import io
import json
import math
import os
import random
import sys
import time
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import shapes  # noqa: E402
from clip_tokenizer import ClipTokenizer  # noqa: E402
from ram_modules import ClipText, RamPlus  # noqa: E402

CONFIG = dict(
    image_size=64, patch_size=4, embed_dim=48, depths=[2, 2, 2, 2], heads=[1, 2, 4, 8],
    window=4, mlp_ratio=4.0,
    tagger_hidden=96, tagger_layers=2, tagger_heads=4, tagger_intermediate=384,
    embed=512, num_class=len(shapes.TAGS), des_per_class=shapes.DES_PER_TAG,
    clip_width=48, clip_layers=3, clip_heads=2, clip_vocab=49408, clip_context=77,
)
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)
SEED_TRAIN, SEED_VAL, SEED_HELDOUT, SEED_NOVEL, SEED_INIT, SEED_FT = 1000, 2, 3, 4, 5, 6


# ------------------------------------------------------------------ data

def to_input(img, size):
    """Official preprocessing: convert('RGB'), resize((S,S), BILINEAR), ToTensor, Normalize."""
    img = img.convert("RGB")
    if img.size != (size, size):
        img = img.resize((size, size), Image.BILINEAR)
    a = (np.asarray(img, np.float32) / 255.0 - MEAN) / STD
    return a.transpose(2, 0, 1)


def random_canvas(rng):
    if rng.random() < 0.4:
        return 128, 128
    w = rng.randint(96, 224)
    h = int(round(w * rng.uniform(0.8, 1.25)))
    return w, max(96, min(h, 256))


def jpeg(img, q):
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=q)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def training_picture(rng, info=None, easy=0.0, small=0.0):
    """easy: probability of a single large object (the curriculum of the
    first steps: whole silhouettes teach the Swin shapes much sooner).
    small: probability of making one, two or three objects small (the
    caption model's tagger misses small shapes most; 0 draws nothing, so
    earlier runs' pictures stay the same)."""
    a = shapes.sample_attrs(rng)
    if easy and rng.random() < easy:
        a["count"], a["size"] = "one", "large"
        a["position"] = rng.choice(shapes.POSITIONS)
    if small and a["count"] != "many" and rng.random() < small:
        a["size"] = "small"
    w, h = random_canvas(rng)
    img = shapes.render(a, rng, w, h, info)
    if info is not None:
        info["size"] = (w, h)
    if rng.random() < 0.15:
        img = jpeg(img, rng.randint(75, 95))
    return img, a


DENSE = (("shape", shapes.SHAPES), ("colour", shapes.COLOURS), ("pattern", shapes.PATTERNS),
         ("size", shapes.SIZES))
DENSE_OUT = 1 + sum(len(v) for _, v in DENSE)


def dense_targets(infos, attrs, grid, size):
    """Per token of a grid x grid map: does an object cover the cell's centre
    (or, when none does, hold an object's centre), and that object's
    shape/colour/pattern/size indices (-100 = ignore)."""
    B = len(attrs)
    obj = np.zeros((B, grid * grid), np.float32)
    idx = np.full((len(DENSE), B, grid * grid), -100, np.int64)
    cell = size / grid
    for i, (inf, a) in enumerate(zip(infos, attrs)):
        w, h = inf["size"]
        sx, sy = size / w, size / h
        for (cx, cy), r in zip(inf["centres"], inf["radii"]):
            mx, my, mr = cx * sx, cy * sy, r * math.sqrt(sx * sy)
            cells = {min(int(my / cell), grid - 1) * grid + min(int(mx / cell), grid - 1)}
            for gy in range(grid):
                for gx in range(grid):
                    if ((gx + 0.5) * cell - mx) ** 2 + ((gy + 0.5) * cell - my) ** 2 < (0.8 * mr) ** 2:
                        cells.add(gy * grid + gx)
            for t in cells:
                obj[i, t] = 1.0
                for d, (g, vals) in enumerate(DENSE):
                    idx[d, i, t] = vals.index(a[g])
    return obj, idx


def dense_loss(out, obj, idx):
    """out (B, T, DENSE_OUT [+ 2 grid]) from an auxiliary head on image tokens;
    extra trailing outputs, if any, predict each token's own row and column
    (so that the tokens know where they are: position tags need it)."""
    loss = F.binary_cross_entropy_with_logits(out[..., 0], obj)
    c = 1
    for d, (_, vals) in enumerate(DENSE):
        loss = loss + F.cross_entropy(out[..., c:c + len(vals)].reshape(-1, len(vals)),
                                      idx[d].reshape(-1))
        c += len(vals)
    if out.shape[-1] > c:
        B, T, _ = out.shape
        grid = (out.shape[-1] - c) // 2
        rows = torch.arange(T) // grid
        cols = torch.arange(T) % grid
        loss = loss + F.cross_entropy(out[..., c:c + grid].reshape(-1, grid), rows.repeat(B))
        loss = loss + F.cross_entropy(out[..., c + grid:].reshape(-1, grid), cols.repeat(B))
    return loss


def encode_image_taps(m, x):
    """m.encode_image(x), plus the tokens entering stage 2 (a finer grid) for
    deep supervision during training."""
    ve = m.visual_encoder
    h = ve.patch_embed(x)
    tap = None
    for i, layer in enumerate(ve.layers):
        if i == 2:
            tap = h
        h = layer(h)
    h = ve.norm(h)
    return m.image_proj(torch.cat([h.mean(1, keepdim=True), h], 1)), tap


QUERY_P = (("shape", 0.8), ("colour", 0.8), ("size", 0.5), ("pattern", 0.35), ("position", 0.5),
           ("background", 0.3))
VALUES = {g: vals for g, vals in shapes.GROUPS}


def query_keys(rng, a):
    return tuple(k for k, p in QUERY_P if rng.random() < p and (k != "position" or a["position"]))


def perturb(rng, a, keys):
    """A copy of a with one mentioned attribute (or the count) changed."""
    b = dict(a)
    k = rng.choice(list(keys) + ["count"])
    if k == "count":
        b["count"] = rng.choice([c for c in shapes.COUNTS if c != a["count"]])
        if b["count"] == "many":
            b["size"] = "small"
        if b["count"] != "one":
            b["position"] = None
            keys = tuple(x for x in keys if x != "position")
    else:
        b[k] = rng.choice([v for v in VALUES[k] if v != a[k]])
    return b, keys


def batch_queries(rng, attrs):
    """3 phrases per picture: its own, a one-attribute negative, a random one."""
    out = []
    for a in attrs:
        keys = query_keys(rng, a)
        out.append((a, keys))
        for _ in range(1):
            for _ in range(20):
                b, k2 = perturb(rng, a, keys)
                if not shapes.mentions_heldout_pair(b, k2):
                    out.append((b, k2))
                    break
        while True:
            b = shapes.sample_attrs(rng)
            k2 = query_keys(rng, b)
            if not shapes.mentions_heldout_pair(b, k2):
                out.append((b, k2))
                break
    texts = [shapes.phrase(b, k, rng) for b, k in out]
    labels = [[float(shapes.matches(a, b, k)) for b, k in out] for a in attrs]
    return texts, labels


class Texts:
    """Tokenization cache (the ids of a text never change)."""

    def __init__(self, tok):
        self.tok = tok
        self.cache = {}

    def ids(self, texts):
        return torch.from_numpy(self.ids_np(texts))

    def ids_np(self, texts):
        rows = []
        for t in texts:
            r = self.cache.get(t)
            if r is None:
                r = self.tok.tokenize(t)
                self.cache[t] = r
            rows.append(r)
        arr = np.zeros((len(rows), 77), np.int64)
        for i, r in enumerate(rows):
            arr[i, :len(r)] = r
        return arr


def normalize(x):
    return x / x.norm(dim=-1, keepdim=True)


# ------------------------------------------------------------------ model

def build(cfg):
    m = RamPlus(cfg["image_size"], cfg["patch_size"], cfg["embed_dim"], cfg["depths"], cfg["heads"],
                cfg["window"], cfg["num_class"], cfg["des_per_class"], cfg["tagger_hidden"],
                cfg["tagger_layers"], cfg["tagger_heads"], cfg["tagger_intermediate"], cfg["embed"])
    t = ClipText(cfg["clip_width"], cfg["clip_layers"], cfg["clip_heads"], cfg["embed"],
                 cfg["clip_vocab"], cfg["clip_context"])
    return m, t


def param_groups(mods, wd):
    decay, no = [], []
    for mod in mods:
        for n, p in mod.named_parameters():
            if p.dim() < 2 or "embedding" in n or n == "label_embed" or "bias_table" in n:
                no.append(p)
            else:
                decay.append(p)
    return [{"params": decay, "weight_decay": wd}, {"params": no, "weight_decay": 0.0}]


GROUP_COLS = [(g, [i for i, (_, gg, _) in enumerate(shapes.TAGS) if gg == g]) for g, _ in shapes.GROUPS]


def group_ce(logits, attrs):
    """Softmax cross-entropy within each group of mutually exclusive tags
    (position only for pictures that have one): a much stronger signal than
    per-tag BCE early in training."""
    loss = 0.0
    for g, cols in GROUP_COLS:
        rows = [i for i, a in enumerate(attrs) if a.get(g) is not None]
        if not rows:
            continue
        tgt = torch.tensor([VALUES[g].index(attrs[i][g]) for i in rows])
        loss = loss + F.cross_entropy(logits[rows][:, cols], tgt)
    return loss / len(GROUP_COLS)


def optimizer_step(opt, sched, loss, m, t):
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(list(m.parameters()) + list(t.parameters()), 5.0)
    opt.step()
    sched.step()


def produce(make, n, workers):
    """Yields make(0), ..., make(n - 1). With workers=1 they are made in a
    forked child process (pictures, targets, tokenization: about a quarter of
    a step at one thread) while this process trains on the second core. The
    child calls make in the same order with the same rng, so the batches, and
    the trained model, are the same either way. make must return picklable
    data (numpy, lists): the child never touches torch."""
    if not workers:
        for step in range(n):
            yield make(step)
        return
    import multiprocessing as mp
    ctx = mp.get_context("fork")
    q = ctx.Queue(maxsize=6)

    def child():
        for step in range(n):
            q.put(make(step))

    proc = ctx.Process(target=child, daemon=True)
    proc.start()
    try:
        for _ in range(n):
            yield q.get()
    finally:
        proc.join(timeout=5)
        if proc.is_alive():
            proc.terminate()


def train_batch(args, rng, texts, step):
    """Everything one phase-1 step needs that does not need the model."""
    infos = [{} for _ in range(args.batch)]
    easy = args.easy * min(1.0, max(0.0, 2.0 - 5.0 * step / args.steps))
    pics = [training_picture(rng, inf, easy) for inf in infos]
    attrs = [a for _, a in pics]
    x = np.stack([to_input(img, CONFIG["image_size"]) for img, _ in pics])
    y_tag = np.zeros((args.batch, CONFIG["num_class"]), np.float32)
    for i, a in enumerate(attrs):
        y_tag[i, shapes.tag_indices(a)] = 1.0
    q_texts, q_labels = batch_queries(rng, attrs)
    caps = [shapes.caption(a, rng) for a in attrs]
    grid, S = CONFIG["image_size"] // 32, CONFIG["image_size"]
    return dict(x=x, y_tag=y_tag, attrs=attrs, q_ids=texts.ids_np(q_texts),
                q_labels=np.array(q_labels, np.float32), cap_ids=texts.ids_np(caps),
                dense1=dense_targets(infos, attrs, grid, S), dense2=dense_targets(infos, attrs, 2 * grid, S))


def as_tensor(a):
    """A batch field from produce() (numpy) as a tensor sharing its memory."""
    return torch.from_numpy(a)


def train(args, m, t, texts):
    rng = random.Random(SEED_TRAIN)
    desc = [d for ds in shapes.TAG_DESCRIPTIONS for d in ds]
    desc_ids = texts.ids(desc)
    K, D = CONFIG["num_class"], CONFIG["des_per_class"]
    if args.free_labels:
        # label_embed is learned directly by the tagging objective (it starts
        # from the text tower's embeddings of the descriptions) and the text
        # tower is pulled onto it (align loss): the head then never waits for
        # a half-trained text tower to tell the classes apart.
        with torch.no_grad():
            m.label_embed.data.copy_(normalize(t(desc_ids)))
        m.label_embed.requires_grad_(True)
    else:
        m.label_embed.requires_grad_(False)  # written from the text tower at the end
    # training-only auxiliary head: per-token tag logits, max over the image
    # tokens; gives the Swin direct, localised gradients (discarded at save)
    aux = torch.nn.Linear(CONFIG["embed"], K)
    grid = CONFIG["image_size"] // 32
    dense = torch.nn.Linear(CONFIG["embed"], DENSE_OUT + 2 * grid)
    dense2 = torch.nn.Linear(CONFIG["embed_dim"] * 4, DENSE_OUT)
    opt = torch.optim.AdamW(param_groups([m, t, aux, dense, dense2], 0.05), lr=args.lr, betas=(0.9, 0.98))
    warm = max(1, args.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / args.steps))))
    m.train()
    t.train()
    t0 = time.time()
    log = []
    acc = {"tag": 0.0, "query": 0.0, "itc": 0.0, "n": 0}
    batches = produce(lambda step: train_batch(args, rng, texts, step), args.steps, args.workers)
    for step, b in enumerate(batches):
        attrs = b["attrs"]
        x, y_tag = as_tensor(b["x"]), as_tensor(b["y_tag"])
        # three text batches, each cut at its own longest text
        lab_t = normalize(t(desc_ids))
        lab = normalize(m.label_embed) if args.free_labels else lab_t
        qe = normalize(t(as_tensor(b["q_ids"])))
        ce = normalize(t(as_tensor(b["cap_ids"])))
        ie, tap = encode_image_taps(m, x)
        logits = m.tag_logits(ie, lab, D, qe)
        l_tag = (F.binary_cross_entropy_with_logits(logits[:, :K], y_tag) * 10
                 + group_ce(logits[:, :K], attrs)
                 + group_ce(aux(ie[:, 1:]).max(1)[0], attrs)
                 + dense_loss(dense(ie[:, 1:]), *map(as_tensor, b["dense1"]))
                 + dense_loss(dense2(tap), *map(as_tensor, b["dense2"])))
        l_q = F.binary_cross_entropy_with_logits(logits[:, K:], as_tensor(b["q_labels"]))
        s = t.logit_scale.exp().clamp(max=100) * normalize(ie[:, 0]) @ ce.t()
        tgt = torch.arange(args.batch)
        l_itc = 0.5 * (F.cross_entropy(s, tgt) + F.cross_entropy(s.t(), tgt))
        loss = l_tag + l_q + 0.5 * l_itc
        if args.free_labels:
            l_align = (1 - (lab_t * lab.detach()).sum(-1)).mean()
            loss = loss + 5 * l_align
            acc["align"] = acc.get("align", 0.0) + l_align.item()
        optimizer_step(opt, sched, loss, m, t)
        acc["tag"] += l_tag.item()
        acc["query"] += l_q.item()
        acc["itc"] += l_itc.item()
        acc["n"] += 1
        with torch.no_grad():
            for g, cols in GROUP_COLS:
                rows = [i for i, a in enumerate(attrs) if a.get(g) is not None]
                if rows:
                    tgt = torch.tensor([VALUES[g].index(attrs[i][g]) for i in rows])
                    hit = (logits[rows][:, cols].argmax(1) == tgt).float().mean().item()
                    acc["acc_" + g] = acc.get("acc_" + g, 0.0) + hit
                    if g in ("shape", "count", "pattern", "position"):
                        al = aux(ie[rows, 1:]).max(1)[0][:, cols]
                        acc["aux_" + g] = acc.get("aux_" + g, 0.0) + (al.argmax(1) == tgt).float().mean().item()
        if (step + 1) % 50 == 0 or step + 1 == args.steps:
            el = time.time() - t0
            n = acc.pop("n")
            rec = {k: round(v / n, 3) for k, v in acc.items()}
            rec.update(step=step + 1, minutes=round(el / 60, 2), lr=round(sched.get_last_lr()[0], 6))
            log.append(rec)
            print(json.dumps(rec), flush=True)
            acc = {"tag": 0.0, "query": 0.0, "itc": 0.0, "n": 0}
    return log, time.time() - t0


def finetune(args, m, t, texts):
    """Second phase: open-set ranking. Each picture scores the 10 candidate
    phrases the tests use ("two small blue triangles", three of them one
    attribute off, six random; never a held-out pair) through the RAM++
    open-set path (text tower -> one-description label -> decoder); softmax
    over its own candidates plus BCE on them, with the tagging, phrase and
    align losses of phase 1 kept so nothing is forgotten. Own seeds, own
    optimizer: resuming from a saved phase-1 model gives the same run."""
    rng = random.Random(SEED_FT)
    torch.manual_seed(SEED_FT)
    desc_ids = texts.ids([d for ds in shapes.TAG_DESCRIPTIONS for d in ds])
    K, D = CONFIG["num_class"], CONFIG["des_per_class"]
    m.label_embed.requires_grad_(True)
    opt = torch.optim.AdamW(param_groups([m, t], 0.05), lr=args.ft_lr, betas=(0.9, 0.98))
    n = args.ft_steps
    warm = max(1, n // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / n))))
    m.train()
    t.train()
    t0 = time.time()
    log = []
    acc = {"rank": 0.0, "tag": 0.0, "top1": 0.0, "n": 0}
    def make(step):
        pics = [training_picture(rng) for _ in range(args.batch)]
        attrs = [a for _, a in pics]
        x = np.stack([to_input(img, CONFIG["image_size"]) for img, _ in pics])
        y_tag = np.zeros((args.batch, K), np.float32)
        for i, a in enumerate(attrs):
            y_tag[i, shapes.tag_indices(a)] = 1.0
        cands = [candidates(rng, a, False) if rng.random() < 0.5 else varied_candidates(rng, a) for a in attrs]
        q_texts, q_labels = batch_queries(rng, attrs)
        flat = [c for cs, _ in cands for c in cs] + q_texts
        return dict(x=x, y_tag=y_tag, attrs=attrs, C=len(cands[0][0]), ans=np.array([a for _, a in cands]),
                    ids=texts.ids_np(flat), q_labels=np.array(q_labels, np.float32))

    for step, b in enumerate(produce(make, n, args.workers)):
        attrs, C = b["attrs"], b["C"]
        x, y_tag = as_tensor(b["x"]), as_tensor(b["y_tag"])
        qe = normalize(t(as_tensor(b["ids"])))
        lab_t = normalize(t(desc_ids))
        lab = normalize(m.label_embed)
        ie = m.encode_image(x)
        logits = m.tag_logits(ie, lab, D, qe)
        own = torch.stack([logits[i, K + C * i:K + C * (i + 1)] for i in range(args.batch)])
        ans = as_tensor(b["ans"])
        l_rank = F.cross_entropy(own, ans) + F.binary_cross_entropy_with_logits(
            own, F.one_hot(ans, C).float()) * 3
        l_tag = F.binary_cross_entropy_with_logits(logits[:, :K], y_tag) * 10 + group_ce(logits[:, :K], attrs)
        l_q = F.binary_cross_entropy_with_logits(logits[:, K + C * args.batch:], as_tensor(b["q_labels"]))
        l_align = (1 - (lab_t * lab.detach()).sum(-1)).mean()
        loss = 2 * l_rank + l_tag + l_q + 5 * l_align
        optimizer_step(opt, sched, loss, m, t)
        acc["rank"] += l_rank.item()
        acc["tag"] += l_tag.item()
        acc["top1"] += (own.argmax(1) == ans).float().mean().item()
        acc["n"] += 1
        if (step + 1) % 50 == 0 or step + 1 == n:
            k = acc.pop("n")
            rec = {key: round(v / k, 3) for key, v in acc.items()}
            rec.update(phase=2, step=step + 1, minutes=round((time.time() - t0) / 60, 2))
            log.append(rec)
            print(json.dumps(rec), flush=True)
            acc = {"rank": 0.0, "tag": 0.0, "top1": 0.0, "n": 0}
    return log, time.time() - t0


@torch.no_grad()
def write_label_embed(m, t, texts, free):
    if free:   # the learned rows, unit length as the official CLIP rows are
        m.label_embed.data.copy_(normalize(m.label_embed.data))
        return
    desc = [d for ds in shapes.TAG_DESCRIPTIONS for d in ds]
    m.label_embed.data.copy_(normalize(t(texts.ids(desc))))


@torch.no_grad()
def image_probs(m, xs, bs=64):
    out, embs = [], []
    for i in range(0, len(xs), bs):
        x = torch.from_numpy(np.stack(xs[i:i + bs]))
        ie = m.encode_image(x)
        out.append(torch.sigmoid(m.tag_logits(ie, m.label_embed, CONFIG["des_per_class"])))
        embs.append(ie)
    return torch.cat(out).numpy(), torch.cat(embs)


# ------------------------------------------------------------------ metrics

def f1_counts(pred, gold):
    tp = float((pred & gold).sum())
    fp = float((pred & ~gold).sum())
    fn = float((~pred & gold).sum())
    return tp, fp, fn


def f1(tp, fp, fn):
    return 2 * tp / max(2 * tp + fp + fn, 1e-9)


def choose_thresholds(probs, gold):
    """Per class: the threshold (2 decimals) maximising F1 of prob > thr; ties
    -> the middle of the best run, away from both error sides."""
    thr = []
    grid = [round(0.01 * k, 2) for k in range(1, 100)]
    for c in range(probs.shape[1]):
        scores = [f1(*f1_counts(probs[:, c] > g, gold[:, c])) for g in grid]
        best = max(scores)
        idx = [i for i, s in enumerate(scores) if s >= best - 1e-12]
        # the longest run of consecutive best thresholds, its middle
        runs, cur = [], [idx[0]]
        for i in idx[1:]:
            if i == cur[-1] + 1:
                cur.append(i)
            else:
                runs.append(cur)
                cur = [i]
        runs.append(cur)
        run = max(runs, key=len)
        thr.append(grid[run[len(run) // 2]])
    return np.array(thr, np.float32)


def closed_metrics(probs, gold, thr):
    pred = probs > thr[None, :]
    tp, fp, fn = f1_counts(pred, gold)
    per_group = {}
    for g, _ in shapes.GROUPS:
        cols = [i for i, (_, gg, _) in enumerate(shapes.TAGS) if gg == g]
        per_group[g] = round(f1(*f1_counts(pred[:, cols], gold[:, cols])), 4)
    macro = np.mean([f1(*f1_counts(pred[:, c], gold[:, c])) for c in range(gold.shape[1])
                     if gold[:, c].any()])
    exact = float(np.mean((pred == gold).all(1)))
    return {"micro_f1": round(f1(tp, fp, fn), 4), "macro_f1": round(float(macro), 4),
            "exact_match": round(exact, 4), "per_group_f1": per_group}


def candidates(rng, a, novel):
    """10 phrases naming (count, size, colour, shape): the picture's own, three
    with one attribute changed, six random; shuffled. Held-out pairs appear
    only as the right answer of a novel picture."""
    keys = ("size", "colour", "shape")
    right = shapes.phrase(a, keys)
    out = [right]

    def ok(b):
        p = shapes.phrase(b, keys)
        return p not in out and not shapes.mentions_heldout_pair(b, keys)

    for k in ("colour", "shape", "size"):
        for _ in range(50):
            b = dict(a)
            b[k] = rng.choice([v for v in VALUES[k] if v != a[k]])
            if ok(b):
                out.append(shapes.phrase(b, keys))
                break
    while len(out) < 10:
        b = dict(a)
        b["size"], b["colour"], b["shape"] = (rng.choice(shapes.SIZES), rng.choice(shapes.COLOURS),
                                              rng.choice(shapes.SHAPES))
        if ok(b):
            out.append(shapes.phrase(b, keys))
    rng.shuffle(out)
    return out, out.index(right)


OPTIONAL_KEYS = (("size", 0.7), ("pattern", 0.35), ("background", 0.4), ("position", 0.35))


def varied_candidates(rng, a):
    """Phase 2's other kind of 10 candidates: phrases naming colour, shape
    (count always) and a random choice of size, pattern, background and
    position, e.g. "two red circles on a black background": the picture's
    own, one per mentioned attribute changed (and one with the count
    changed), random ones for the rest; none is true of the picture and none
    names a held-out pair. Without them phase 2 would teach the open-set path
    only the tests' (count, size, colour, shape) form."""
    keys = ("colour", "shape") + tuple(k for k, p in OPTIONAL_KEYS
                                       if rng.random() < p and (k != "position" or a.get("position")))
    right = shapes.phrase(a, keys, rng)
    out = [right]

    def add(b):
        p = shapes.phrase(b, keys, rng)
        if p not in out and not shapes.matches(a, b, keys) and not shapes.mentions_heldout_pair(b, keys):
            out.append(p)

    for k in keys + ("count",):
        for _ in range(20):
            b = dict(a)
            if k == "count":
                b["count"] = rng.choice([c for c in shapes.COUNTS if c != a["count"]])
            else:
                b[k] = rng.choice([v for v in VALUES[k] if v != a[k]])
            n0 = len(out)
            add(b)
            if len(out) > n0:
                break
    while len(out) < 10:
        b = shapes.sample_attrs(rng)
        if "position" in keys and not b.get("position"):
            continue
        add(b)
    out = out[:10]
    rng.shuffle(out)
    return out, out.index(right)


@torch.no_grad()
def openset_probs(m, t, texts, ie, cands):
    """ie: (1, T, 512) one image's embeddings; cands: phrases, one description each."""
    lab = normalize(t(texts.ids(cands)))
    return torch.sigmoid(m.tag_logits(ie, lab, 1))[0].numpy()


# ------------------------------------------------------------------ held-out sets

def make_pictures(seed, n, novel, outdir, prefix):
    """Writes n pictures to outdir (PNG, some JPEG, varied sizes); returns records."""
    rng = random.Random(seed)
    recs = []
    for i in range(n):
        a = shapes.sample_attrs(rng, heldout=novel)
        w, h = random_canvas(rng)
        img = shapes.render(a, rng, w, h)
        if rng.random() < 0.15:
            name = f"{prefix}{i:03d}.jpg"
            img.save(os.path.join(outdir, name), "JPEG", quality=90)
        else:
            name = f"{prefix}{i:03d}.png"
            img.save(os.path.join(outdir, name), "PNG", optimize=True)
        cands, answer = candidates(rng, a, novel)
        recs.append({"file": name, "set": "novel" if novel else "main", "width": w, "height": h,
                     "tags": shapes.tag_indices(a),
                     "attrs": {k: v for k, v in a.items() if v is not None},
                     "caption": shapes.caption(a, random.Random(i)),
                     "candidates": cands, "answer": answer})
    return recs


def evaluate(args, m, t, texts, thr=None):
    m.eval()
    t.eval()
    K = CONFIG["num_class"]
    S = CONFIG["image_size"]
    res = {}
    if thr is None:
        rng = random.Random(SEED_VAL)
        xs, gold = [], np.zeros((args.val, K), bool)
        for i in range(args.val):
            img, a = training_picture(rng)
            xs.append(to_input(img, S))
            gold[i, shapes.tag_indices(a)] = True
        probs, _ = image_probs(m, xs)
        thr = choose_thresholds(probs, gold)
        res["validation"] = closed_metrics(probs, gold, thr)
        res["validation"]["n"] = args.val
    hd = args.heldout
    os.makedirs(hd, exist_ok=True)
    for f in os.listdir(hd):
        if f.endswith((".png", ".jpg")):
            os.remove(os.path.join(hd, f))
    recs = make_pictures(SEED_HELDOUT, args.n_heldout, False, hd, "h")
    recs += make_pictures(SEED_NOVEL, args.n_novel, True, hd, "n")
    # measured from the files, as the C side reads them
    xs = [to_input(Image.open(os.path.join(hd, r["file"])), S) for r in recs]
    probs, ie = image_probs(m, xs)
    for r, p in zip(recs, probs):
        r["probs"] = [float(v) for v in p]
    for setname in ("main", "novel"):
        idx = [i for i, r in enumerate(recs) if r["set"] == setname]
        gold = np.zeros((len(idx), K), bool)
        for j, i in enumerate(idx):
            gold[j, recs[i]["tags"]] = True
        res[f"heldout_{setname}"] = closed_metrics(probs[idx], gold, thr)
        right = 0
        for i in idx:
            op = openset_probs(m, t, texts, ie[i:i + 1], recs[i]["candidates"])
            recs[i]["openset_probs"] = [float(v) for v in op]
            right += int(int(np.argmax(op)) == recs[i]["answer"])
        res[f"heldout_{setname}"]["openset_top1"] = round(right / len(idx), 4)
        res[f"heldout_{setname}"]["n"] = len(idx)
    all_texts = sorted({c for r in recs for c in r["candidates"]}
                       | {d for ds in shapes.TAG_DESCRIPTIONS for d in ds}
                       | {r["caption"] for r in recs})
    doc = {
        "about": "Held-out pictures of models/train/shapes.py (seeds %d main, %d novel) for "
                 "tests/test_default_model.c; 'novel' pictures show only colour x shape pairs "
                 "never seen in training. probs / openset_probs: PyTorch (models/train/"
                 "train_default.py) on the decoded files." % (SEED_HELDOUT, SEED_NOVEL),
        "image_size": S,
        "tags": shapes.TAG_NAMES,
        "thresholds": [float(v) for v in thr],
        "heldout_pairs": sorted([list(p) for p in shapes.HELDOUT_PAIRS]),
        "python_metrics": {k: v for k, v in res.items() if k.startswith("heldout")},
        "token_ids": {s: texts.tok.tokenize(s) for s in all_texts},
        "images": recs,
    }
    with open(os.path.join(hd, "heldout.json"), "w") as f:
        json.dump(doc, f, ensure_ascii=False, separators=(",", ":"))
    return res, thr


# ------------------------------------------------------------------ output

@torch.no_grad()
def round_to_half(*mods):
    """Rounds every float weight to float16 precision, in place: the files are
    committed as float16 (half the size; ram-convert widens them to f32), and
    the PyTorch reference numbers must come from exactly those weights."""
    for mod in mods:
        for v in list(mod.parameters()) + list(mod.buffers()):
            if v.is_floating_point():
                v.copy_(v.half().float())


def half_state(mod):
    return OrderedDict((k, v.half() if v.is_floating_point() else v)
                       for k, v in mod.state_dict().items())


def save(args, m, t, thr, info):
    od = args.out
    os.makedirs(od, exist_ok=True)
    torch.save({"model": half_state(m)}, os.path.join(od, "ram_plus_default.pth"))
    torch.save(half_state(t), os.path.join(od, "clip_text_default.pth"))
    with open(os.path.join(od, "ram_tag_list.txt"), "w") as f:
        f.write("\n".join(shapes.TAG_NAMES) + "\n")
    with open(os.path.join(od, "ram_tag_list_chinese.txt"), "w") as f:
        f.write("\n".join(shapes.TAG_ZH) + "\n")
    with open(os.path.join(od, "ram_tag_list_threshold.txt"), "w") as f:
        f.write("\n".join(f"{v:.2f}" for v in thr) + "\n")
    with open(os.path.join(od, "tag_descriptions.json"), "w") as f:
        json.dump([{n: d} for n, d in zip(shapes.TAG_NAMES, shapes.TAG_DESCRIPTIONS)], f,
                  ensure_ascii=False, indent=1)
    with open(os.path.join(od, "config.json"), "w") as f:
        json.dump(info, f, ensure_ascii=False, indent=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=7500, help="phase 1 steps")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=8e-4)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1: this model's ops are too small for a second "
                         "thread; 2 measured 3x slower per step here)")
    ap.add_argument("--workers", type=int, default=1,
                    help="1: make the batches in a second process (the second core)")
    ap.add_argument("--val", type=int, default=1000)
    ap.add_argument("--n-heldout", type=int, default=200)
    ap.add_argument("--n-novel", type=int, default=60)
    ap.add_argument("--out", default="models/default")
    ap.add_argument("--heldout", default="tests/data/heldout")
    ap.add_argument("--image-size", type=int, default=CONFIG["image_size"])
    ap.add_argument("--window", type=int, default=CONFIG["window"])
    ap.add_argument("--embed-dim", type=int, default=CONFIG["embed_dim"])
    ap.add_argument("--easy", type=float, default=0.6,
                    help="share of single large objects during the first 20%% of the steps "
                         "(then down to none at 40%%)")
    ap.add_argument("--ft-steps", type=int, default=800, help="phase 2 (open-set ranking) steps")
    ap.add_argument("--ft-lr", type=float, default=3e-4)
    ap.add_argument("--resume", metavar="DIR",
                    help="skip phase 1: take its weights and record from DIR (a run's --out)")
    ap.add_argument("--free-labels", type=int, default=1,
                    help="1: learn label_embed directly and align the text tower to it")
    ap.add_argument("--eval-only", action="store_true",
                    help="load the saved model, round it to float16, rewrite the held-out set, "
                         "re-measure and save it again (float16)")
    args = ap.parse_args()
    CONFIG.update(image_size=args.image_size, window=args.window, embed_dim=args.embed_dim)
    torch.set_num_threads(args.threads)
    torch.manual_seed(SEED_INIT)
    tok = ClipTokenizer(os.path.join(HERE, "..", "bpe_simple_vocab_16e6.txt.gz"))
    texts = Texts(tok)
    m, t = build(CONFIG)
    if args.eval_only:
        m.load_state_dict(torch.load(os.path.join(args.out, "ram_plus_default.pth"))["model"])
        t.load_state_dict(torch.load(os.path.join(args.out, "clip_text_default.pth")))
        thr = np.loadtxt(os.path.join(args.out, "ram_tag_list_threshold.txt"), dtype=np.float32)
        round_to_half(m, t)
        res, _ = evaluate(args, m, t, texts, thr)
        with open(os.path.join(args.out, "config.json")) as f:
            info = json.load(f)
        info["metrics"] = dict(info.get("metrics", {}), **res)
        info["weights"] = "float16"
        save(args, m, t, thr, info)
        print(json.dumps(res, indent=1))
        return
    if args.resume:
        # phase 1 of an earlier run (its weights and its record), then phase 2
        m.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in
                           torch.load(os.path.join(args.resume, "ram_plus_default.pth"))["model"].items()})
        t.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in
                           torch.load(os.path.join(args.resume, "clip_text_default.pth")).items()})
        with open(os.path.join(args.resume, "config.json")) as f:
            prev = json.load(f)["training"]
        log, secs = prev["log"], prev["minutes"] * 60
    else:
        log, secs = train(args, m, t, texts)
    ft_log, ft_secs = finetune(args, m, t, texts) if args.ft_steps else ([], 0.0)
    write_label_embed(m, t, texts, args.free_labels)
    round_to_half(m, t)
    res, thr = evaluate(args, m, t, texts)
    nparam = sum(p.numel() for p in m.parameters())
    nclip = sum(p.numel() for p in t.parameters())
    info = {
        "about": "The bundled default model: RAM++ architecture trained on synthetic shapes "
                 "(models/train/). Convert with build/ram-convert (see the Makefile rule).",
        "config": CONFIG,
        "convert_flags": ["--clip-heads", str(CONFIG["clip_heads"]),
                          "--tagger-heads", str(CONFIG["tagger_heads"])],
        "params": {"ram_plus": nparam, "clip_text": nclip},
        "training": {"steps": args.steps, "batch": args.batch, "lr": args.lr,
                     "threads": args.threads, "workers": args.workers, "minutes": round(secs / 60, 1),
                     "torch": torch.__version__, "seeds": {"train": SEED_TRAIN, "val": SEED_VAL,
                                                          "init": SEED_INIT},
                     "log": log[-5:],
                     "phase2": {"steps": args.ft_steps, "lr": args.ft_lr, "seed": SEED_FT,
                                "minutes": round(ft_secs / 60, 1), "log": ft_log[-3:]},
                     "total_minutes": round((secs + ft_secs) / 60, 1)},
        "heldout_pairs": sorted([list(p) for p in shapes.HELDOUT_PAIRS]),
        "weights": "float16",
        "metrics": res,
    }
    save(args, m, t, thr, info)
    # every logged line of the run (config.json keeps the last few)
    for name, lines in (("train_log_phase1.jsonl", None if args.resume else log), ("train_log_phase2.jsonl", ft_log)):
        if lines:
            with open(os.path.join(args.out, name), "w") as f:
                f.writelines(json.dumps(r) + "\n" for r in lines)
    print(json.dumps(res, indent=1))
    print(f"training took {secs / 60:.1f} + {ft_secs / 60:.1f} min")


if __name__ == "__main__":
    main()
