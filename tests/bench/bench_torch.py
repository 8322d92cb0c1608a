"""bench_torch.py -- this project's own PyTorch port of RAM++, timed by `make
bench` beside our engine. It is NOT the official code and its figures must
not be called "PyTorch" comparisons: the comparison with the official PyTorch
code (and with ONNX Runtime) is `make bench-peers` (tests/bench/peers.sh,
docs/BENCH.md). What this times is the port models/train/ram_modules.py
(checked against the official goldens by models/train/check_modules.py) at
the full size of the official checkpoint, with random weights; run.sh
reports it as "our PyTorch port" (results.json keys torch_port_*):

    /usr/bin/python3 tests/bench/bench_torch.py IMAGE [RUNS] [--ours=EXT,MODEL]   # RUNS default 3

Prints "key value" lines like bench_model (read by tests/bench/run.sh):
torch_{preprocess,visual,tagging,latency}_s_{1,2}t (medians over RUNS after
one warm-up forward), torch_init_s, torch_peak_rss_bytes, and the latency of
each thread configuration tried. With --ours=build/ram,MODEL.ram our engine
(the extension, ram_tags on the same image, a float32 model of the same
size) runs right after each torch forward at the same thread count, and
ours_paired_latency_s_{1,2}t and paired_speedup_vs_torch_{1,2}t (torch /
ours) come from those interleaved runs: on a machine whose load changes
from minute to minute, only runs side by side compare fairly.

What is timed, per image, as the official inference scripts run it
(ARCHITECTURE.md sections 2 and 5), in float32, model.eval(), torch.no_grad():
  preprocess  PIL open + convert('RGB') + resize((384, 384), BILINEAR) +
              ToTensor + Normalize (done with numpy: torchvision is not
              installed for Debian's python3; the arithmetic is the same)
  visual      image_proj(visual_encoder(x)): Swin-L 384 + image_proj
  tagging     the RAM++ tagging head written as the official generate_tag
              does it (official_tagging below), sigmoid included
Full size (models/convert_config.c preset ram_plus_swin_l_384, ARCHITECTURE.md
section 1): image 384, patch 4, embed 192, depths 2-2-18-2, heads 6-12-24-48,
window 12; 4585 classes x 51 descriptions; decoder hidden 768, 2 layers,
4 heads, FFN 3072; 512-wide embeddings. 329.5 M parameters, 1.32 GB.

Threads: Debian's torch does its large products in OpenBLAS (pthreads build,
libopenblas.so.0), which torch.set_num_threads does not reach; its thread
count is set through openblas_set_num_threads as well, so "1 thread" and
"2 threads" mean the same for torch as ram_set_threads means for us. At 2
threads torch is timed with torch.set_num_threads(2) and with (1) (OpenBLAS
at 2 in both) and the faster counts (see main): the comparison is with
torch's best, not with a bad setting of it.
"""
import ctypes
import math
import os
import resource
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "models", "train"))
from ram_modules import RamPlus  # noqa: E402

FULL = dict(image_size=384, patch=4, embed_dim=192, depths=[2, 2, 18, 2], heads=[6, 12, 24, 48],
            window=12, num_class=4585, des_per_class=51, hidden=768, tagger_layers=2,
            tagger_heads=4, intermediate=3072, embed=512)

try:
    _openblas = ctypes.CDLL("libopenblas.so.0")
except OSError:
    _openblas = None


def set_threads(omp, blas):
    torch.set_num_threads(omp)
    if _openblas is not None:
        _openblas.openblas_set_num_threads(blas)


def preprocess(path, size):
    """The official transform: PIL bilinear resize (aspect ignored), ToTensor, Normalize."""
    img = Image.open(path).convert("RGB").resize((size, size), Image.BILINEAR)
    x = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).float().div(255)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    return ((x - mean) / std).unsqueeze(0)


def official_tagging(m, image_embeds, num_class):
    """RAM++ generate_tag after the image encoder, the way the official
    ram_plus.py computes it. The one place where it differs from
    RamPlus.tag_logits is the description reweighting: the official code
    loops over the batch and, per image, multiplies the (num_class, 51)
    softmax weights into label_embed viewed (num_class, 51, 512), which
    materialises a num_class*51 x 512 float32 temporary (479 MB at full size)
    before summing over the 51 descriptions. That is reproduced here (for a
    batch of one, tag_logits' broadcast builds the same temporary, but this
    keeps the official shape of the computation explicit). The decoder layers
    are ram_modules' TaggerLayer, which computes BERT cross-attention as
    bert.py does; the all-zero additive attention mask the official
    BertModel adds to the scores is added too."""
    bs = image_embeds.shape[0]
    label_embed = m.label_embed
    des = label_embed.shape[0] // num_class
    cls = image_embeds[:, 0, :]
    cls = cls / cls.norm(dim=-1, keepdim=True)
    logits_per_image = (m.reweight_scale.exp() * cls @ label_embed.t()).view(bs, -1, des)
    weight = F.softmax(logits_per_image, dim=2)
    reweighted = torch.empty(bs, num_class, label_embed.shape[1], dtype=image_embeds.dtype)
    for i in range(bs):
        product = weight[i].unsqueeze(-1) * label_embed.view(-1, des, label_embed.shape[1])
        reweighted[i] = product.sum(dim=1)
    h = F.relu(m.wordvec_proj(reweighted))
    mask = torch.zeros(bs, 1, 1, image_embeds.shape[1])  # invert_attention_mask(ones): additive 0
    for layer in m.tagging_head.encoder.layer:
        ca = layer.crossattention
        B, K, H = h.shape
        nh = layer.heads
        hd = H // nh
        q = ca.self.query(h).view(B, K, nh, hd).transpose(1, 2)
        k = ca.self.key(image_embeds).view(B, -1, nh, hd).transpose(1, 2)
        v = ca.self.value(image_embeds).view(B, -1, nh, hd).transpose(1, 2)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(hd) + mask
        ctx = (scores.softmax(-1) @ v).transpose(1, 2).reshape(B, K, H)
        a = ca.output.LayerNorm(ca.output.dense(ctx) + h)
        h = layer.output.LayerNorm(layer.output.dense(F.gelu(layer.intermediate.dense(a))) + a)
    return torch.sigmoid(m.fc(h).squeeze(-1))


class Ours:
    """Our engine in this same process, through the extension as SQL users
    call it (ram_tags on the encoded bytes: decode, preprocess, encoder,
    tagging decoder), so that its runs interleave with torch's and both see
    the same load on a shared machine. It links the same libopenblas.so.0,
    so set_threads reaches it too (ram_set_threads is openblas_set_num_threads)."""

    def __init__(self, so, model, data):
        import sqlite3
        self.db = sqlite3.connect(":memory:")
        self.db.enable_load_extension(True)
        self.db.load_extension(so)
        self.db.execute("SELECT ram_load(?)", (model,)).fetchone()
        self.data = data
        self.k = 0

    def forward(self):
        # The extension caches results by XXH3 of the bytes: 8 bytes after
        # the end of the JPEG give another key and the same pixels.
        self.k += 1
        blob = self.data + self.k.to_bytes(8, "little")
        t = time.perf_counter()
        self.db.execute("SELECT ram_tags(?)", (blob,)).fetchone()
        return time.perf_counter() - t


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--ours=")]
    ours_arg = [a[len("--ours="):] for a in sys.argv[1:] if a.startswith("--ours=")]
    if not args:
        print("usage: bench_torch.py IMAGE [RUNS] [--ours=EXTENSION,MODEL]", file=sys.stderr)
        return 2
    path = args[0]
    runs = max(1, int(args[1])) if len(args) > 1 else 3
    torch.manual_seed(0)
    t = time.perf_counter()
    m = RamPlus(**FULL)
    with torch.no_grad():
        m.label_embed.normal_(0, 0.02)  # eval-stage models start with zeros; any values time the same
    m.eval()
    print("torch_init_s %.3f" % (time.perf_counter() - t))
    print("torch_parameters %d" % sum(p.numel() for p in m.parameters()))
    print("torch_openblas %s" % ("yes" if _openblas is not None else "no"))
    S = FULL["image_size"]
    # (name, torch intra-op threads, OpenBLAS threads). "2 threads" is timed
    # both ways and the faster one counts: with both pools at 2, libgomp's
    # threads spin after each elementwise op while OpenBLAS's threads want the
    # same two cores, which on a busy machine can cost torch more than the
    # second core gives it. Runs are interleaved so that a change in the
    # machine's load hits every configuration alike.
    configs = (("1t", 1, 1), ("2t_omp2", 2, 2), ("2t_omp1", 1, 2))
    times = {c[0]: {"preprocess": [], "visual": [], "tagging": [], "latency": []} for c in configs}
    ours, ours_t = None, {1: [], 2: []}
    with torch.no_grad():
        for r in range(-1, runs):
            for name, omp, blas in configs:
                set_threads(omp, blas)
                t0 = time.perf_counter()
                x = preprocess(path, S)
                t1 = time.perf_counter()
                emb = m.encode_image(x)
                t2 = time.perf_counter()
                probs = official_tagging(m, emb, FULL["num_class"])
                t3 = time.perf_counter()
                assert probs.shape == (1, FULL["num_class"])
                if r < 0:
                    break  # one warm-up forward: first touch of the weights and the allocator
                for k, v in (("preprocess", t1 - t0), ("visual", t2 - t1), ("tagging", t3 - t2), ("latency", t3 - t0)):
                    times[name][k].append(v)
                # Ours right after torch at the same thread count (once per count).
                if ours is not None and name != "2t_omp2":
                    ours_t[blas].append(ours.forward())
            if r < 0:
                # torch's peak (its forward's temporaries included) before our
                # model is mapped into the process; ru_maxrss is in KiB.
                print("torch_peak_rss_bytes %d" % (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024))
                if ours_arg:
                    so, model = ours_arg[0].split(",", 1)
                    with open(path, "rb") as f:
                        ours = Ours(so, model, f.read())
                    set_threads(1, 2)
                    ours.forward()  # warm-up: maps the model, touches its pages
    med = {c: {k: float(np.median(v)) for k, v in d.items()} for c, d in times.items()}
    for c in med:
        print("torch_%s_latency_s %.4f" % (c, med[c]["latency"]))
    best2 = min(("2t_omp2", "2t_omp1"), key=lambda c: med[c]["latency"])
    print("torch_2t_config %s" % best2)
    for th, c in ((1, "1t"), (2, best2)):
        for k in ("preprocess", "visual", "tagging", "latency"):
            print("torch_%s_s_%dt %.4f" % (k, th, med[c][k]))
    if ours is not None:
        for th, c in ((1, "1t"), (2, best2)):
            o = float(np.median(ours_t[th]))
            print("ours_paired_latency_s_%dt %.4f" % (th, o))
            print("paired_speedup_vs_torch_%dt %.2f" % (th, med[c]["latency"] / o))
    return 0


if __name__ == "__main__":
    sys.exit(main())
