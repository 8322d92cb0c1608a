"""check_modules.py -- proves that ram_modules.py computes what the OFFICIAL
code computes, before any training relies on it: loads the golden tiny
checkpoints (tests/data/golden, produced by the official PyTorch code) into
our modules with strict=True and compares every available output.

Usage (from the repository root):  /usr/bin/python3 models/train/check_modules.py
Exits non-zero when a difference exceeds 1e-5 or a key does not match.
"""
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ram_modules import ClipText, RamPlus  # noqa: E402

G = "tests/data/golden"


def main():
    torch.set_num_threads(1)
    cfg = json.load(open(f"{G}/config.json"))
    sw, q = cfg["swin"], cfg["q2l"]
    m = RamPlus(cfg["image_res"], cfg["patch_size"], sw["embed_dim"], sw["depths"], sw["num_heads"],
                sw["window_size"], cfg["num_class"], cfg["ram_plus"]["des_per_class"],
                q["hidden_size"], q["num_hidden_layers"], q["num_attention_heads"],
                q["intermediate_size"])
    sd = torch.load(f"{G}/ram_plus_tiny.pth")["model"]
    ours = m.state_dict()
    ok = list(sd.keys()) == list(ours.keys())
    print("ram_plus keys identical and in the same order:", ok)
    for k, v in sd.items():
        if v.dtype == torch.int64 or k.endswith("attn_mask"):
            same = torch.equal(v, ours[k])
            ok &= same
            if not same:
                print("buffer differs:", k)
    m.load_state_dict(sd, strict=True)
    m.eval()
    worst = 0.0
    with torch.no_grad():
        for i in range(4):
            x = torch.from_numpy(np.load(f"{G}/preprocess/img{i}_input.npy"))
            ve = m.visual_encoder(x)
            emb = m.image_proj(ve)
            logits = m.tag_logits(emb, m.label_embed, cfg["ram_plus"]["des_per_class"])
            for name, t in (("visual_encoder_out", ve), ("image_embeds", emb), ("logits", logits)):
                g = np.load(f"{G}/ram_plus/img{i}_{name}.npy")
                d = float(np.abs(t.numpy() - g).max())
                worst = max(worst, d)
                print(f"img{i} {name}: max abs diff {d:.2e}")
    c = cfg["clip"]
    t = ClipText(c["transformer_width"], c["transformer_layers"], c["transformer_heads"],
                 c["embed_dim"], c["vocab_size"], c["context_length"])
    csd = torch.load(f"{G}/clip_tiny.pth")
    csd = {k: v for k, v in csd.items() if not k.startswith("visual.")}
    t.load_state_dict(csd, strict=True)
    with torch.no_grad():
        ids = torch.from_numpy(np.load(f"{G}/openset/token_ids.npy")).long()
        feat = t(ids).numpy()
    d = float(np.abs(feat - np.load(f"{G}/openset/text_features.npy")).max())
    worst = max(worst, d)
    print(f"clip encode_text: max abs diff {d:.2e}")
    ok &= worst < 1e-5
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
