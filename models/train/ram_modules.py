"""ram_modules.py -- PyTorch modules with exactly the RAM++ architecture and
the official state-dict key layout, plus a CLIP text tower in the OpenAI key
layout; used ONLY to train the bundled default model (models/default/).
The extension never runs PyTorch: build/ram-convert turns the saved state
dicts into a model file for the C engine.

Usage:
    m = RamPlus(image_size=128, embed_dim=24, depths=[2,2,2,2], heads=[1,2,4,8],
                window=4, num_class=41, des_per_class=6, hidden=96, tagger_heads=4,
                intermediate=384)
    t = ClipText(width=48, layers=3, heads=2)
    emb = t(ids)                                  # (n, 512), not normalised
    image_embeds = m.encode_image(x)              # (B, 1 + (S/32)^2, 512)
    logits = m.tag_logits(image_embeds, label_embed, des_per_class)

Written from /work/shared/docs/ARCHITECTURE.md (sections 3-6, 10): every
semantic detail matters because the C engine computes the official
semantics and any deviation here would silently cost quality in C:
  Swin: patch conv + LayerNorm; windows with relative position bias; shift
    s = w/2 on odd blocks, none (and window = R) when R <= window; cyclic
    roll by -s, region mask -100, roll back; q scaled before q k^T; patch
    merging x0 (even,even) x1 (odd row) x2 (odd col) x3, LayerNorm, reduction
    without bias; final LayerNorm; CLS = mean of the normed tokens, prepended.
    LayerNorm eps 1e-5, exact GELU, mlp_ratio 4.
  RAM++ head: image_proj on all tokens; reweighting of each class's
    descriptions by softmax(exp(reweight_scale) * normalize(cls) . label_embed);
    ReLU(wordvec_proj); BERT layers with cross-attention only (scores divided
    by sqrt(head_dim) after the product, post-LN residuals, eps 1e-12, exact
    GELU); fc shared by all classes.
  CLIP text: token + positional embedding; pre-LN blocks with causal mask and
    QuickGELU; ln_final; the EOT row (argmax id) times text_projection.
Buffers (relative_position_index, attn_mask) are registered like the
official ones, so the saved state dict has the same keys in the same order.
"""
import math
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F


def _trunc_normal(t, std):
    nn.init.trunc_normal_(t, std=std, a=-2 * std, b=2 * std)


# ------------------------------------------------------------------ Swin

def window_partition(x, w):
    B, H, W, C = x.shape
    x = x.view(B, H // w, w, W // w, w, C)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, w, w, C)


def window_reverse(windows, w, H, W):
    B = windows.shape[0] // ((H // w) * (W // w))
    x = windows.view(B, H // w, W // w, w, w, -1)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(B, H, W, -1)


class WindowAttention(nn.Module):
    def __init__(self, dim, window, heads):
        super().__init__()
        self.window = window
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        ys, xs = torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
        coords = torch.stack([ys.flatten(), xs.flatten()])           # (2, N)
        rel = coords[:, :, None] - coords[:, None, :]                # (2, N, N): a - b
        index = (rel[0] + window - 1) * (2 * window - 1) + (rel[1] + window - 1)
        self.register_buffer("relative_position_index", index.long())
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        _trunc_normal(self.relative_position_bias_table, 0.02)

    def forward(self, x, mask):
        Bw, N, C = x.shape
        h = self.heads
        qkv = self.qkv(x).reshape(Bw, N, 3, h, C // h).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0] * self.scale, qkv[1], qkv[2]
        attn = q @ k.transpose(-2, -1)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        attn = attn + bias.view(N, N, h).permute(2, 0, 1).unsqueeze(0)
        if mask is not None:
            nW = mask.shape[0]
            attn = attn.view(Bw // nW, nW, h, N, N) + mask.unsqueeze(1).unsqueeze(0)
            attn = attn.view(Bw, h, N, N)
        attn = attn.softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(Bw, N, C)
        return self.proj(x)


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class SwinBlock(nn.Module):
    def __init__(self, dim, res, heads, window, shift, mlp_ratio):
        super().__init__()
        if res <= window:
            shift = 0
            window = res
        self.res, self.window, self.shift = res, window, shift
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.attn = WindowAttention(dim, window, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        if shift > 0:
            img = torch.zeros(1, res, res, 1)
            bands = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
            cnt = 0
            for hs in bands:
                for ws in bands:
                    img[:, hs, ws, :] = cnt
                    cnt += 1
            mw = window_partition(img, window).view(-1, window * window)
            m = mw.unsqueeze(1) - mw.unsqueeze(2)
            m = m.masked_fill(m != 0, -100.0).masked_fill(m == 0, 0.0)
            self.register_buffer("attn_mask", m)
        else:
            self.attn_mask = None

    def forward(self, x):
        B, L, C = x.shape
        R, w, s = self.res, self.window, self.shift
        shortcut = x
        x = self.norm1(x).view(B, R, R, C)
        if s > 0:
            x = torch.roll(x, shifts=(-s, -s), dims=(1, 2))
        win = window_partition(x, w).view(-1, w * w, C)
        win = self.attn(win, self.attn_mask)
        x = window_reverse(win.view(-1, w, w, C), w, R, R)
        if s > 0:
            x = torch.roll(x, shifts=(s, s), dims=(1, 2))
        x = shortcut + x.reshape(B, R * R, C)
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    def __init__(self, res, dim):
        super().__init__()
        self.res = res
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim, eps=1e-5)

    def forward(self, x):
        B, L, C = x.shape
        R = self.res
        x = x.view(B, R, R, C)
        x0 = x[:, 0::2, 0::2]
        x1 = x[:, 1::2, 0::2]
        x2 = x[:, 0::2, 1::2]
        x3 = x[:, 1::2, 1::2]
        x = torch.cat([x0, x1, x2, x3], -1).view(B, -1, 4 * C)
        return self.reduction(self.norm(x))


class BasicLayer(nn.Module):
    def __init__(self, dim, res, depth, heads, window, mlp_ratio, downsample):
        super().__init__()
        self.blocks = nn.ModuleList([
            SwinBlock(dim, res, heads, window, 0 if b % 2 == 0 else window // 2, mlp_ratio)
            for b in range(depth)])
        self.downsample = PatchMerging(res, dim) if downsample else None

    def forward(self, x):
        for b in self.blocks:
            x = b(x)
        return self.downsample(x) if self.downsample is not None else x


class PatchEmbed(nn.Module):
    def __init__(self, patch, in_chans, dim):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=patch, stride=patch)
        self.norm = nn.LayerNorm(dim, eps=1e-5)

    def forward(self, x):
        return self.norm(self.proj(x).flatten(2).transpose(1, 2))


class SwinTransformer(nn.Module):
    def __init__(self, image_size, patch, embed_dim, depths, heads, window, mlp_ratio=4.0):
        super().__init__()
        self.patch_embed = PatchEmbed(patch, 3, embed_dim)
        res = image_size // patch
        self.layers = nn.ModuleList()
        for s, depth in enumerate(depths):
            last = s == len(depths) - 1
            self.layers.append(BasicLayer(embed_dim * 2 ** s, res // 2 ** s, depth, heads[s],
                                          window, mlp_ratio, not last))
        self.num_features = embed_dim * 2 ** (len(depths) - 1)
        self.norm = nn.LayerNorm(self.num_features, eps=1e-5)

    def forward(self, x):
        x = self.patch_embed(x)
        for layer in self.layers:
            x = layer(x)
        x = self.norm(x)
        return torch.cat([x.mean(1, keepdim=True), x], 1)


# ------------------------------------------------------------------ tagging decoder

class _CrossSelf(nn.Module):
    def __init__(self, hidden, enc_width):
        super().__init__()
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(enc_width, hidden)
        self.value = nn.Linear(enc_width, hidden)


class _CrossOutput(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=1e-12)


class _CrossAttention(nn.Module):
    def __init__(self, hidden, enc_width):
        super().__init__()
        self.self = _CrossSelf(hidden, enc_width)
        self.output = _CrossOutput(hidden)


class _Dense(nn.Module):
    def __init__(self, i, o):
        super().__init__()
        self.dense = nn.Linear(i, o)


class _Output(nn.Module):
    def __init__(self, inter, hidden):
        super().__init__()
        self.dense = nn.Linear(inter, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=1e-12)


class TaggerLayer(nn.Module):
    def __init__(self, hidden, heads, inter, enc_width):
        super().__init__()
        self.heads = heads
        self.crossattention = _CrossAttention(hidden, enc_width)
        self.intermediate = _Dense(hidden, inter)
        self.output = _Output(inter, hidden)

    def forward(self, h, kx, vx):
        """h (B, K, H) queries; kx, vx (B, T, H) already projected keys/values."""
        B, K, H = h.shape
        nh = self.heads
        hd = H // nh
        ca = self.crossattention
        q = ca.self.query(h).view(B, K, nh, hd).transpose(1, 2)          # (B, nh, K, hd)
        k = kx.view(B, -1, nh, hd).transpose(1, 2)
        v = vx.view(B, -1, nh, hd).transpose(1, 2)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        ctx = (scores.softmax(-1) @ v).transpose(1, 2).reshape(B, K, H)
        a = ca.output.LayerNorm(ca.output.dense(ctx) + h)
        return self.output.LayerNorm(self.output.dense(F.gelu(self.intermediate.dense(a))) + a)


class _Encoder(nn.Module):
    def __init__(self, layers, hidden, heads, inter, enc_width):
        super().__init__()
        self.layer = nn.ModuleList([TaggerLayer(hidden, heads, inter, enc_width)
                                    for _ in range(layers)])


class TaggingHead(nn.Module):
    def __init__(self, layers, hidden, heads, inter, enc_width):
        super().__init__()
        self.encoder = _Encoder(layers, hidden, heads, inter, enc_width)

    def forward(self, h, image_embeds):
        for layer in self.encoder.layer:
            sa = layer.crossattention.self
            h = layer(h, sa.key(image_embeds), sa.value(image_embeds))
        return h


# ------------------------------------------------------------------ RAM++

class RamPlus(nn.Module):
    def __init__(self, image_size, patch, embed_dim, depths, heads, window, num_class,
                 des_per_class, hidden, tagger_layers, tagger_heads, intermediate, embed=512):
        super().__init__()
        # registration order gives the official state-dict order
        self.label_embed = nn.Parameter(torch.zeros(num_class * des_per_class, embed))
        self.reweight_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        self.visual_encoder = SwinTransformer(image_size, patch, embed_dim, depths, heads, window)
        self.tagging_head = TaggingHead(tagger_layers, hidden, tagger_heads, intermediate, embed)
        self.wordvec_proj = nn.Linear(embed, hidden)
        self.fc = nn.Linear(hidden, 1)
        self.image_proj = nn.Linear(self.visual_encoder.num_features, embed)
        # Linear/conv layers keep PyTorch's default (fan-in scaled) init: at
        # these small widths the official N(0, 0.02) makes the Swin learn
        # several times slower from scratch.

    def encode_image(self, x):
        return self.image_proj(self.visual_encoder(x))

    def tag_logits(self, image_embeds, label_embed, des, extra=None):
        """RAM++ tagging (ARCHITECTURE.md section 5). label_embed: (K*des, 512)
        rows, class-major. extra: optional (Q, 512) single-description queries
        (open-set phrases) appended after the K classes (des 1: weight 1)."""
        B = image_embeds.shape[0]
        cls = image_embeds[:, 0]
        cls_n = cls / cls.norm(dim=-1, keepdim=True)
        K = label_embed.shape[0] // des
        r = self.reweight_scale.exp() * (cls_n @ label_embed.t())
        w = r.view(B, K, des).softmax(-1)
        lab = (w.unsqueeze(-1) * label_embed.view(1, K, des, -1)).sum(2)   # (B, K, 512)
        if extra is not None:
            lab = torch.cat([lab, extra.unsqueeze(0).expand(B, -1, -1)], 1)
        h0 = F.relu(self.wordvec_proj(lab))
        return self.fc(self.tagging_head(h0, image_embeds)).squeeze(-1)


# ------------------------------------------------------------------ CLIP text tower

class _Attn(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * width))
        self.out_proj = nn.Linear(width, width)


class ResBlock(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.attn = _Attn(width)
        self.ln_1 = nn.LayerNorm(width, eps=1e-5)
        self.mlp = nn.Sequential(OrderedDict([("c_fc", nn.Linear(width, 4 * width)),
                                              ("c_proj", nn.Linear(4 * width, width))]))
        self.ln_2 = nn.LayerNorm(width, eps=1e-5)

    def forward(self, x, causal):
        n, L, W = x.shape
        nh = self.heads
        y = F.linear(self.ln_1(x), self.attn.in_proj_weight, self.attn.in_proj_bias)
        q, k, v = y.split(W, -1)
        q = q.view(n, L, nh, W // nh).transpose(1, 2)
        k = k.view(n, L, nh, W // nh).transpose(1, 2)
        v = v.view(n, L, nh, W // nh).transpose(1, 2)
        s = (q @ k.transpose(-1, -2)) / math.sqrt(W // nh) + causal
        a = (s.softmax(-1) @ v).transpose(1, 2).reshape(n, L, W)
        x = x + self.attn.out_proj(a)
        h = self.mlp.c_fc(self.ln_2(x))
        return x + self.mlp.c_proj(h * torch.sigmoid(1.702 * h))


class _Transformer(nn.Module):
    def __init__(self, width, layers, heads):
        super().__init__()
        self.resblocks = nn.ModuleList([ResBlock(width, heads) for _ in range(layers)])


class ClipText(nn.Module):
    def __init__(self, width, layers, heads, embed=512, vocab=49408, context=77):
        super().__init__()
        self.positional_embedding = nn.Parameter(torch.empty(context, width))
        self.text_projection = nn.Parameter(torch.empty(width, embed))
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        self.transformer = _Transformer(width, layers, heads)
        self.token_embedding = nn.Embedding(vocab, width)
        self.ln_final = nn.LayerNorm(width, eps=1e-5)
        # OpenAI CLIP's initialisation
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        proj_std = width ** -0.5 * (2 * layers) ** -0.5
        for b in self.transformer.resblocks:
            nn.init.normal_(b.attn.in_proj_weight, std=width ** -0.5)
            nn.init.normal_(b.attn.out_proj.weight, std=proj_std)
            nn.init.zeros_(b.attn.out_proj.bias)
            nn.init.normal_(b.mlp.c_fc.weight, std=(2 * width) ** -0.5)
            nn.init.normal_(b.mlp.c_proj.weight, std=proj_std)
        nn.init.normal_(self.text_projection, std=width ** -0.5)

    def forward(self, ids):
        """ids (n, 77) int64 zero padded; returns encode_text (n, embed). Only
        the columns up to the last EOT are computed: with the causal mask the
        later ones cannot change the EOT row."""
        eot = ids.argmax(-1)
        L = int(eot.max()) + 1
        x = self.token_embedding(ids[:, :L]) + self.positional_embedding[:L]
        causal = torch.full((L, L), float("-inf")).triu(1)
        for b in self.transformer.resblocks:
            x = b(x, causal)
        x = self.ln_final(x)
        return x[torch.arange(x.shape[0]), eot] @ self.text_projection
