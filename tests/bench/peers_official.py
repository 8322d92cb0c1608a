"""peers_official.py -- the official PyTorch RAM++ in make bench-peers.

Runs the official code (xinyu1205/recognize-anything, a local checkout named by
--repo or RAM_OFFICIAL_REPO; never part of this repository) under Debian's
python3-torch. Python packages the official code imports but Debian lacks are
replaced by tests/bench/peers_shims.py (what each stand-in does is listed
there; --check-golden proves they leave the arithmetic alone).

    peers_official.py make-model OUT.pth [--seed N]
        The full-size RAM++ (RAM_plus(image_size=384, vit='swin_l'), the
        official constructor and its own random initialisation), saved as the
        official checkpoint layout torch.save({'model': state_dict}) and read
        back with the official loader (load_checkpoint_swinlarge). Two things
        the official constructor leaves to the released checkpoint are made
        to behave like a trained model: label_embed (all zeros until a
        checkpoint is loaded) becomes 51 correlated unit-norm description
        embeddings per tag, and fc is scaled x10 so that the probabilities
        spread over ~1e-4..1 instead of sitting near 0.5 (issue 19).
    peers_official.py export-onnx MODEL.pth OUT.onnx
        torch.onnx.export of the official generate_tag on one image: the graph
        is traced through the official method and its output is the official
        fc's output (the logits), captured by a forward hook.
    peers_official.py worker MODEL.pth
        A timing/fidelity worker (protocol of tests/bench/peers.py): reads
        commands on stdin, answers one line on stdout.
    peers_official.py check-golden GOLDEN_DIR
        The official classes at the golden set's tiny config, with the shims,
        on the golden checkpoint and images: largest |logit - golden logit|.
"""
import contextlib
import json
import os
import sys
import tempfile
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import peers_shims  # noqa: E402

SIZE = 384
DES = 51


def official(repo=None):
    """Imports the official package from the checkout; returns its modules."""
    return peers_shims.import_official(peers_shims.official_repo("ram_plus", "peers_official", repo), "ram_plus")


set_threads = peers_shims.set_threads


def build(rp):
    # The official constructor for the released RAM++ (inference_ram_plus.py).
    return rp.RAM_plus(image_size=SIZE, vit="swin_l")


def load(rp, ru, pth):
    m = build(rp)
    # The official loader prints to stdout, which is the workers' protocol.
    with contextlib.redirect_stdout(sys.stderr):
        m, msg = ru.load_checkpoint_swinlarge(m, pth, {"image_size": SIZE})
    peers_shims.check_loaded(msg, pth, "peers_official")
    return m.eval()


def make_model(out, seed):
    rp, ru, _ = official()
    torch.manual_seed(seed)
    m = build(rp)
    n = m.num_class
    with torch.no_grad():
        base = torch.randn(n, 1, 512)
        des = base + 0.5 * torch.randn(n, DES, 512)
        des = des / des.norm(dim=-1, keepdim=True)
        m.label_embed.copy_(des.reshape(n * DES, 512))
        m.fc.weight.mul_(10.0)
        m.fc.bias.mul_(10.0)
    torch.save({"model": m.state_dict()}, out + ".tmp")
    os.replace(out + ".tmp", out)
    load(rp, ru, out)  # the official loader reads it back
    print("peers_official: wrote %s (%d parameters, seed %d)" % (out, sum(p.numel() for p in m.parameters()), seed),
          file=sys.stderr)


class Logits:
    """Captures the official fc's output (the logits) during generate_tag."""
    def __init__(self, m):
        self.value = None
        m.fc.register_forward_hook(self.hook)

    def hook(self, mod, inp, out):
        self.value = out.squeeze(-1)


class Traced(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m
        self.logits = Logits(m)

    def forward(self, x):
        self.m.generate_tag(x)
        return self.logits.value


def export_onnx(pth, out):
    rp, ru, _ = official()
    m = load(rp, ru, pth)
    t = Traced(m).eval()
    x = torch.randn(1, 3, SIZE, SIZE)
    with torch.no_grad():
        torch.onnx.export(t, (x,), out + ".tmp", input_names=["image"], output_names=["logits"],
                          opset_version=17, do_constant_folding=True)
    os.replace(out + ".tmp", out)
    print("peers_official: wrote %s" % out, file=sys.stderr)


def worker(pth):
    rp, ru, get_transform = official()
    from PIL import Image
    t0 = time.perf_counter()
    m = load(rp, ru, pth)
    logits = Logits(m)
    tf = get_transform(SIZE)
    x = None
    print("ready %.3f torch %s openblas %s" % (time.perf_counter() - t0, torch.__version__,
                                               "yes" if peers_shims.have_openblas() else "no"), flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if not cmd:
            continue
        if cmd[0] == "threads":
            set_threads(int(cmd[1]))
            print("ok", flush=True)
        elif cmd[0] == "load":
            # The official preprocessing (inference_ram_plus.py): PIL open,
            # get_transform (convert RGB, resize 384x384 bilinear, ToTensor,
            # Normalize).
            x = tf(Image.open(cmd[1])).unsqueeze(0)
            print("ok", flush=True)
        elif cmd[0] == "run":
            # "run intra1": torch's own pool at 1 thread for this forward,
            # OpenBLAS left at the thread count set.
            n = torch.get_num_threads()
            if cmd[1:] == ["intra1"]:
                torch.set_num_threads(1)
            with torch.no_grad():
                t = time.perf_counter()
                m.generate_tag(x)
                t = time.perf_counter() - t
            torch.set_num_threads(n)
            print("time %.6f" % t, flush=True)
        elif cmd[0] == "probs":
            # Writes PREFIX.logits.f32 and the input tensor PREFIX.input.f32
            # (what ONNX Runtime is given: the same preprocessed image).
            with torch.no_grad():
                m.generate_tag(x)
            logits.value.numpy().astype("<f4").tofile(cmd[1] + ".logits.f32")
            x.numpy().astype("<f4").tofile(cmd[1] + ".input.f32")
            print("ok", flush=True)
        elif cmd[0] == "quit":
            break
        else:
            print("error unknown command %s" % cmd[0], flush=True)


def check_golden(gdir):
    """The golden set's tiny RAM++ (tests/data/golden/config.json) through the
    official classes with these shims: the official constructor reads fixed
    config paths, so its module's CONFIG_PATH points at a temporary folder
    holding the tiny configs, and the official SwinTransformer call gets the
    golden image size (the constructor only accepts 224/384), as the goldens
    were made (tests/data/golden/README.md). Prints the largest differences of
    the preprocessed inputs and logits from the golden files; exits 1 above
    1e-5 (the goldens' own fp32-vs-fp64 error is ~1e-6)."""
    rp, ru, get_transform = official()
    from PIL import Image
    cfg = json.load(open(os.path.join(gdir, "config.json")))
    sw, q = cfg["swin"], cfg["q2l"]
    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(os.path.join(tmp, "configs", "swin"))
        os.makedirs(os.path.join(tmp, "data"))
        with open(os.path.join(tmp, "configs", "swin", "config_swinL_384.json"), "w") as f:
            json.dump({"vision_width": sw["vision_width"], "image_res": SIZE, "window_size": sw["window_size"],
                       "embed_dim": sw["embed_dim"], "depths": sw["depths"], "num_heads": sw["num_heads"]}, f)
        with open(os.path.join(tmp, "configs", "q2l_config.json"), "w") as f:
            json.dump({"hidden_size": q["hidden_size"], "num_hidden_layers": q["num_hidden_layers"],
                       "num_attention_heads": q["num_attention_heads"], "intermediate_size": q["intermediate_size"],
                       "layer_norm_eps": q["layer_norm_eps"], "hidden_act": "gelu", "encoder_width": 768,
                       "add_cross_attention": True, "vocab_size": 30522, "pad_token_id": 0}, f)
        tags = os.path.join(gdir, "tag_list.txt")
        with open(os.path.join(tmp, "data", "ram_tag_list_threshold.txt"), "w") as f:
            f.write(open(os.path.join(gdir, "tag_list_threshold.txt")).read())
        rp.CONFIG_PATH = ru.CONFIG_PATH = tmp
        official_swin = rp.SwinTransformer
        rp.SwinTransformer = lambda **k: official_swin(**dict(k, img_size=cfg["image_res"]))
        try:
            m = rp.RAM_plus(image_size=SIZE, vit="swin_l", tag_list=tags,
                            tag_list_chinese=os.path.join(gdir, "tag_list_chinese.txt"))
        finally:
            rp.SwinTransformer = official_swin
        # The constructor sizes label_embed for 51 descriptions per class;
        # generate_tag takes the count from its shape (the golden has 5).
        m.label_embed = torch.nn.Parameter(torch.zeros(cfg["ram_plus"]["label_embed_shape"]))
        with contextlib.redirect_stdout(sys.stderr):
            m, msg = ru.load_checkpoint_swinlarge(m, os.path.join(gdir, "ram_plus_tiny.pth"), {"image_size": SIZE})
        m.eval()
    logits = Logits(m)
    tf = get_transform(cfg["image_res"])
    worst_in = worst = 0.0
    for i, im in enumerate(cfg["images"]):
        x = tf(Image.open(os.path.join(gdir, im["file"]))).unsqueeze(0)
        gin = np.load(os.path.join(gdir, "preprocess", "img%d_input.npy" % i))
        worst_in = max(worst_in, float(np.abs(x.numpy() - gin).max()))
        with torch.no_grad():
            m.generate_tag(torch.from_numpy(gin))
        g = np.load(os.path.join(gdir, "ram_plus", "img%d_logits.npy" % i))
        worst = max(worst, float(np.abs(logits.value.numpy() - g).max()))
    print("check-golden: %d images: max |input - golden| %.3g, max |logit - golden| %.3g"
          % (len(cfg["images"]), worst_in, worst))
    if worst > 1e-5 or worst_in > 1e-5:
        sys.exit(1)


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    cmd = argv[1]
    if cmd == "make-model" and len(argv) >= 3:
        seed = int(argv[argv.index("--seed") + 1]) if "--seed" in argv else 19
        make_model(argv[2], seed)
    elif cmd == "export-onnx" and len(argv) == 4:
        export_onnx(argv[2], argv[3])
    elif cmd == "worker" and len(argv) == 3:
        worker(argv[2])
    elif cmd == "check-golden" and len(argv) == 3:
        check_golden(argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
