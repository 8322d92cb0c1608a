"""tag2text_modules.py -- PyTorch modules with the Tag2Text architecture and
the official state-dict key layout (visual_encoder.*, tag_encoder.*,
text_decoder.bert.*, text_decoder.cls.predictions.*, tagging_head.*,
label_embed.weight, fc.W, fc.b), used ONLY to train the bundled default
caption model (models/train/train_caption.py). The extension never runs
PyTorch: build/ram-convert reads the saved state dict like the release file.

Usage:
    m = Tag2Text(swin=dict(image_size=64, patch=4, embed_dim=48, depths=[2, 2, 2],
                           heads=[1, 2, 4], window=4),
                 num_class=41, vocab=120, hidden=64, heads=4, inter=128, enc_layers=2,
                 dec_hidden=64, dec_heads=4, dec_inter=128, dec_layers=2)
    img = m.visual_encoder(x)                   # (B, 1 + tokens, C)
    logits = m.tag_logits(img)                  # (B, num_class)
    enc = m.encode_tags(img, tag_ids, tag_mask)  # (B, 40, hidden)
    lm = m.decode(ids, enc)                     # (B, T, vocab + 2)

Written from /work/shared/docs/TAG2TEXT.md (sections 1-5, 10-11); the
semantics the C engine computes, so that training here and inference there
agree: no image_proj; the tagging head's queries are label_embed's rows as
they are (no LayerNorm, no positions), its layers cross-attention + FFN with
their own head count, and they ARE the tag encoder's layers' crossattention,
intermediate and output modules (the same objects: the state dict lists them
under both names, as the official tie does); GroupWiseLinear fc (one weight
vector per class); BERT post-LN layers, LayerNorm eps 1e-12, exact GELU, no
token-type embeddings; tag encoder self-attention mask (1 - mask) * -10000;
causal decoder self-attention; decoder cross-attention over all 40 tag
states (padded ones included); LM head dense + GELU + LayerNorm + the word
embeddings' transpose + bias.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ram_modules import SwinTransformer, _CrossOutput, _Dense, _Output

TAG_LEN = 40  # the tag encoder's fixed input length


class _Proj(nn.Module):
    """BERT's attention.self / crossattention.self: query, key, value."""

    def __init__(self, hidden, kv_width):
        super().__init__()
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(kv_width, hidden)
        self.value = nn.Linear(kv_width, hidden)


class _Attention(nn.Module):
    def __init__(self, hidden, kv_width):
        super().__init__()
        self.self = _Proj(hidden, kv_width)
        self.output = _CrossOutput(hidden)

    def forward(self, h, kv, heads, mask=None):
        """h (B, T, H) queries, kv (B, S, W) attended; mask additive (B or 1, 1, T or 1, S)."""
        B, T, H = h.shape
        hd = H // heads
        q = self.self.query(h).view(B, T, heads, hd).transpose(1, 2)
        k = self.self.key(kv).view(B, -1, heads, hd).transpose(1, 2)
        v = self.self.value(kv).view(B, -1, heads, hd).transpose(1, 2)
        s = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        if mask is not None:
            s = s + mask
        ctx = (s.softmax(-1) @ v).transpose(1, 2).reshape(B, T, H)
        return self.output.LayerNorm(self.output.dense(ctx) + h)


class _TagLayer(nn.Module):
    """tagging_head.encoder.layer.{l}: cross-attention + FFN only."""

    def __init__(self, hidden, inter, image_width):
        super().__init__()
        self.crossattention = _Attention(hidden, image_width)
        self.intermediate = _Dense(hidden, inter)
        self.output = _Output(inter, hidden)


def _ffn(layer, a):
    return layer.output.LayerNorm(layer.output.dense(F.gelu(layer.intermediate.dense(a))) + a)


class _BertLayer(nn.Module):
    def __init__(self, hidden, inter, kv_width, shared=None):
        super().__init__()
        self.attention = _Attention(hidden, hidden)
        if shared is not None:  # the tagging head's tensors (official tie)
            self.crossattention = shared.crossattention
            self.intermediate = shared.intermediate
            self.output = shared.output
        else:
            self.crossattention = _Attention(hidden, kv_width)
            self.intermediate = _Dense(hidden, inter)
            self.output = _Output(inter, hidden)

    def forward(self, h, self_mask, kv, heads):
        a = self.attention(h, h, heads, self_mask)
        a = self.crossattention(a, kv, heads)
        return _ffn(self, a)


class _Embeddings(nn.Module):
    def __init__(self, vocab, max_pos, hidden):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, hidden)
        self.position_embeddings = nn.Embedding(max_pos, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=1e-12)
        self.register_buffer("position_ids", torch.arange(max_pos).unsqueeze(0))

    def forward(self, ids):
        pos = self.position_embeddings.weight[: ids.shape[1]]
        return self.LayerNorm(self.word_embeddings(ids) + pos)


class _Stack(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.layer = nn.ModuleList(layers)


class _Bert(nn.Module):
    def __init__(self, vocab, max_pos, hidden, inter, kv_width, layers, shared=()):
        super().__init__()
        self.embeddings = _Embeddings(vocab, max_pos, hidden)
        self.encoder = _Stack([_BertLayer(hidden, inter, kv_width, shared[i] if i < len(shared) else None)
                               for i in range(layers)])


class _Transform(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=1e-12)


class _Predictions(nn.Module):
    def __init__(self, hidden, vocab):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(vocab))
        self.transform = _Transform(hidden)


class _Cls(nn.Module):
    def __init__(self, hidden, vocab):
        super().__init__()
        self.predictions = _Predictions(hidden, vocab)


class _LMHead(nn.Module):
    def __init__(self, vocab, max_pos, hidden, inter, kv_width, layers):
        super().__init__()
        self.bert = _Bert(vocab, max_pos, hidden, inter, kv_width, layers)
        self.cls = _Cls(hidden, vocab)


class _GroupWiseLinear(nn.Module):
    def __init__(self, num_class, hidden):
        super().__init__()
        self.W = nn.Parameter(torch.empty(1, num_class, hidden))
        self.b = nn.Parameter(torch.empty(1, num_class))
        bound = 1 / math.sqrt(hidden)
        nn.init.uniform_(self.W, -bound, bound)
        nn.init.uniform_(self.b, -bound, bound)

    def forward(self, h):
        return (self.W * h).sum(-1) + self.b


class Tag2Text(nn.Module):
    def __init__(self, swin, num_class, vocab, hidden, heads, inter, enc_layers, dec_hidden, dec_heads,
                 dec_inter, dec_layers, tagger_layers=2, tagger_heads=4, dec_max_pos=64):
        super().__init__()
        self.heads, self.dec_heads, self.tagger_heads = heads, dec_heads, tagger_heads
        # registration order gives the official state-dict order
        self.visual_encoder = SwinTransformer(**swin)
        width = self.visual_encoder.num_features
        tag_layers = [_TagLayer(hidden, inter, width) for _ in range(tagger_layers)]
        self.tag_encoder = _Bert(vocab, TAG_LEN, hidden, inter, width, enc_layers, tag_layers)
        self.text_decoder = _LMHead(vocab, dec_max_pos, dec_hidden, dec_inter, hidden, dec_layers)
        self.tagging_head = nn.Module()
        self.tagging_head.encoder = _Stack(tag_layers)
        self.label_embed = nn.Embedding(num_class, hidden)
        self.fc = _GroupWiseLinear(num_class, hidden)

    def tag_logits(self, image_embeds):
        B = image_embeds.shape[0]
        h = self.label_embed.weight.unsqueeze(0).expand(B, -1, -1)
        for layer in self.tagging_head.encoder.layer:
            h = _ffn(layer, layer.crossattention(h, image_embeds, self.tagger_heads))
        return self.fc(h)

    def encode_tags(self, image_embeds, ids, mask):
        """ids (B, 40) with [ENC] first; mask (B, 40) 1 for real tokens."""
        te = self.tag_encoder
        h = te.embeddings(ids)
        add = ((1.0 - mask.float()) * -10000.0)[:, None, None, :]
        for layer in te.encoder.layer:
            h = layer(h, add, image_embeds, self.heads)
        return h

    def decode(self, ids, enc):
        """Teacher-forced logits (B, T, V) of the decoder over ids (B, T)."""
        d = self.text_decoder
        T = ids.shape[1]
        h = d.bert.embeddings(ids)
        causal = torch.full((T, T), -10000.0).triu(1)[None, None]
        for layer in d.bert.encoder.layer:
            h = layer(h, causal, enc, self.dec_heads)
        p = d.cls.predictions
        t = p.transform.LayerNorm(F.gelu(p.transform.dense(h)))
        return t @ d.bert.embeddings.word_embeddings.weight.t() + p.bias

    def official_state_dict(self):
        """state_dict() plus the tied LM-head keys the official file carries."""
        sd = self.state_dict()
        out = {}
        for k, v in sd.items():
            out[k] = v
            if k == "text_decoder.cls.predictions.transform.LayerNorm.bias":
                out["text_decoder.cls.predictions.decoder.weight"] = sd[
                    "text_decoder.bert.embeddings.word_embeddings.weight"]
                out["text_decoder.cls.predictions.decoder.bias"] = sd["text_decoder.cls.predictions.bias"]
        return out
