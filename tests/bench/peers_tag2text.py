"""peers_tag2text.py -- the official PyTorch Tag2Text generate in make bench-peers.

Runs the official code (xinyu1205/recognize-anything, the checkout named by
RAM_OFFICIAL_REPO; never part of this repository) under Debian's python3-torch,
against our extension on the same image with the same weights, in one run.

    peers_tag2text.py make-model OUT.pth [--seed N]
        The full-size Tag2Text (tag2text(image_size=384, vit='swin_b'), the
        official constructor and its own random initialisation), saved in the
        official checkpoint layout torch.save({'model': state_dict}) and read
        back with the official loader (load_checkpoint_swinbase).
    peers_tag2text.py run MODEL.pth OURS.ram EXTENSION IMAGE [RUNS]
        For 1 and 2 threads: RUNS timed official inferences (what
        inference_tag2text.py does: model.generate(image, tag_input=None,
        max_length=50, return_tag_predict=True) on get_transform's tensor;
        at 2 threads also with torch's intra-op pool at 1), each round
        followed by one of ours (SELECT ram_caption(image) in a worker
        process started with RAM_THREADS=n, so that a busy minute hits both).
        Prints "key value" lines: medians (the official code's better
        setting), their ratio, both captions and whether they are identical,
        and the official tag string.

What Debian lacks and the official Tag2Text calls (transformers 4.25.1's
BertTokenizer, ModelOutput and generate) is written here from the documented
4.25.1 behaviour, on top of peers_shims.py (which leaves the arithmetic to
the official modules): the slow BertTokenizer (basic tokenizer + WordPiece over
bert-base-uncased's vocabulary, [DEC]/[ENC] added as special tokens, decode
with skip_special_tokens and the clean-up), and the beam search of
GenerationMixin.beam_search with BeamSearchScorer/BeamHypotheses (3 beams, min
length 10 through the MinLength processor, length penalty 1, no early
stopping) over the official BertLMHeadModel's prepare_inputs_for_generation,
forward with its key/value cache and _reorder_cache. That is the official
model's own forward at every step, including its recomputation of the
cross-attention keys/values over the 40 tag states at every step
(docs/TAG2TEXT.md section 8: 78 of its 96 decoder GMAC).
"""
import collections
import contextlib
import os
import subprocess
import sys
import time
import unicodedata

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import peers_shims  # noqa: E402

SIZE = 384
VOCAB = os.environ.get("RAM_BERT_VOCAB") or os.path.join(HERE, "..", "..", "models", "bert_vocab.txt")


# ---- transformers 4.25.1 pieces the official Tag2Text calls ----------------

class ModelOutput(collections.OrderedDict):
    """Fields by name or attribute; integer indexing over the non-None
    fields in order (what bert.py's outputs[0] reads)."""
    def __init__(self, **kw):
        super().__init__((k, v) for k, v in kw.items() if v is not None)

    def __getattr__(self, k):
        return self.get(k)

    def __getitem__(self, k):
        if isinstance(k, int):
            return list(self.values())[k]
        return super().__getitem__(k)


def _is_punct(ch):
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp):
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF or 0x2A700 <= cp <= 0x2B73F
            or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF or 0xF900 <= cp <= 0xFAFF
            or 0x2F800 <= cp <= 0x2FA1F)


class Encoded(dict):
    def __getattr__(self, k):
        return self[k]

    def to(self, device):
        return Encoded({k: v.to(device) for k, v in self.items()})


class BertTokenizer:
    """The slow bert-base-uncased tokenizer (do_lower_case, strip accents,
    CJK split, punctuation split, WordPiece with [UNK] past 100 chars)."""
    SPECIAL = ["[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"]

    def __init__(self, vocab_file):
        with open(vocab_file, encoding="utf-8") as f:
            toks = [t.rstrip("\n") for t in f]
        self.ids_to_tokens = list(toks)
        self.vocab = {t: i for i, t in enumerate(toks)}
        self.special = list(self.SPECIAL)
        self.additional_special_tokens_ids = []
        self.unk_token_id, self.sep_token_id, self.pad_token_id = (self.vocab[t] for t in ("[UNK]", "[SEP]", "[PAD]"))
        self.cls_token_id = self.vocab["[CLS]"]
        self.bos_token_id = None

    @classmethod
    def from_pretrained(cls, name, *a, **k):
        return cls(VOCAB)

    def _add(self, tok):
        if tok not in self.vocab:
            self.vocab[tok] = len(self.ids_to_tokens)
            self.ids_to_tokens.append(tok)
        if tok not in self.special:
            self.special.append(tok)
        return self.vocab[tok]

    def add_special_tokens(self, d):
        for k, v in d.items():
            if k == "additional_special_tokens":
                self.additional_special_tokens_ids = [self._add(t) for t in v]
            elif k == "bos_token":
                self.bos_token_id = self._add(v)
            else:
                raise RuntimeError("peers_tag2text: special token %r is not shimmed" % k)

    def __len__(self):
        return len(self.ids_to_tokens)

    def _basic(self, text):
        out = []
        for ch in text:
            cp = ord(ch)
            if cp == 0 or cp == 0xFFFD or (unicodedata.category(ch).startswith("C") and ch not in "\t\n\r"):
                continue
            if ch in " \t\n\r" or unicodedata.category(ch) == "Zs":
                out.append(" ")
            elif _is_cjk(cp):
                out.append(" %s " % ch)
            else:
                out.append(ch)
        words = []
        for w in "".join(out).split():
            if w in self.special:
                words.append(w)
                continue
            w = "".join(c for c in unicodedata.normalize("NFD", w.lower()) if unicodedata.category(c) != "Mn")
            cur = ""
            for c in w:
                if _is_punct(c):
                    if cur:
                        words.append(cur)
                    words.append(c)
                    cur = ""
                else:
                    cur += c
            if cur:
                words.append(cur)
        return words

    def _wordpiece(self, w):
        if w in self.special:
            return [w]
        if len(w) > 100:
            return ["[UNK]"]
        pieces, start = [], 0
        while start < len(w):
            end, cur = len(w), None
            while start < end:
                s = w[start:end] if start == 0 else "##" + w[start:end]
                if s in self.vocab:
                    cur = s
                    break
                end -= 1
            if cur is None:
                return ["[UNK]"]
            pieces.append(cur)
            start = end
        return pieces

    def encode_one(self, text):
        return [self.vocab[p] for w in self._basic(text) for p in self._wordpiece(w)]

    def __call__(self, text, padding=False, truncation=False, max_length=None, return_tensors=None):
        texts = [text] if isinstance(text, str) else list(text)
        rows = []
        for t in texts:
            ids = self.encode_one(t)
            if truncation and max_length:
                ids = ids[:max_length - 2]
            rows.append([self.cls_token_id] + ids + [self.sep_token_id])
        width = max_length if padding == "max_length" else max(len(r) for r in rows)
        mask = [[1] * len(r) + [0] * (width - len(r)) for r in rows]
        rows = [r + [self.pad_token_id] * (width - len(r)) for r in rows]
        return Encoded(input_ids=torch.tensor(rows), attention_mask=torch.tensor(mask))

    def decode(self, ids, skip_special_tokens=False):
        special = {self.vocab[t] for t in self.special}
        toks = [self.ids_to_tokens[int(i)] for i in ids if not (skip_special_tokens and int(i) in special)]
        text = " ".join(toks).replace(" ##", "").strip()
        for a, b in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                     (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")):
            text = text.replace(a, b)
        return text


class BeamHypotheses:
    def __init__(self, n, length_penalty):
        self.n, self.lp, self.beams, self.worst = n, length_penalty, [], 1e9

    def add(self, hyp, sum_logprobs):
        score = sum_logprobs / (hyp.shape[-1] ** self.lp)
        if len(self.beams) < self.n or score > self.worst:
            self.beams.append((score, hyp))
            if len(self.beams) > self.n:
                ranked = sorted([(s, i) for i, (s, _) in enumerate(self.beams)])
                del self.beams[ranked[0][1]]
                self.worst = ranked[1][0]
            else:
                self.worst = min(score, self.worst)

    def is_done(self, best_sum_logprobs, cur_len):
        if len(self.beams) < self.n:
            return False
        return self.worst >= best_sum_logprobs / cur_len ** self.lp


def generate(self, input_ids, max_length=20, min_length=0, num_beams=1, eos_token_id=None, pad_token_id=None,
             repetition_penalty=1.0, **model_kwargs):
    """GenerationMixin.generate -> beam_search for one input whose batch
    rows are already the beams (the official code repeats the encoder states
    itself), with the settings the official Tag2Text passes."""
    if num_beams < 2 or repetition_penalty != 1.0:
        raise RuntimeError("peers_tag2text: only the official beam search (num_beams > 1, no repetition penalty)")
    input_ids = input_ids.repeat_interleave(num_beams, dim=0)
    kw = dict(model_kwargs, attention_mask=input_ids.new_ones(input_ids.shape))
    hyps = BeamHypotheses(num_beams, 1.0)
    beam_scores = torch.zeros(num_beams)
    beam_scores[1:] = -1e9
    cur_len, done, past = input_ids.shape[-1], False, None
    while True:
        inputs = self.prepare_inputs_for_generation(input_ids, past=past, **kw)
        out = self(**inputs, return_dict=True)
        scores = torch.nn.functional.log_softmax(out.logits[:, -1, :], dim=-1)
        if cur_len < min_length:
            scores[:, eos_token_id] = -float("inf")
        V = scores.shape[-1]
        scores = (scores + beam_scores[:, None].expand_as(scores)).view(1, num_beams * V)
        top, tok = torch.topk(scores, 2 * num_beams, dim=1, largest=True, sorted=True)
        beam_of, tok = torch.div(tok, V, rounding_mode="floor"), tok % V
        nb_scores, nb_tokens, nb_idx = [], [], []
        for rank, (t, s, b) in enumerate(zip(tok[0], top[0], beam_of[0])):
            if int(t) == eos_token_id:
                if rank >= num_beams:
                    continue
                hyps.add(input_ids[int(b)].clone(), s.item())
            else:
                nb_scores.append(s)
                nb_tokens.append(t)
                nb_idx.append(b)
            if len(nb_scores) == num_beams:
                break
        done = done or hyps.is_done(top[0].max().item(), cur_len)
        beam_scores = torch.stack(nb_scores)
        beam_idx = torch.stack(nb_idx)
        input_ids = torch.cat([input_ids[beam_idx, :], torch.stack(nb_tokens).unsqueeze(-1)], dim=-1)
        kw["attention_mask"] = torch.cat([kw["attention_mask"], kw["attention_mask"].new_ones((num_beams, 1))], -1)
        past = self._reorder_cache(out.past_key_values, beam_idx)
        cur_len += 1
        if done or cur_len >= max_length:
            break
    if not done:
        for b in range(num_beams):
            hyps.add(input_ids[b], beam_scores[b].item())
    best = sorted(hyps.beams, key=lambda x: x[0]).pop()[1]
    if best.shape[-1] < max_length:
        best = torch.cat([best, best.new_tensor([eos_token_id])])
    return best.unsqueeze(0)


def tie_weights(self):
    """PreTrainedModel.tie_weights (tie_word_embeddings is true by default):
    the LM head's decoder uses the word embeddings' tensor. The official
    model relies on it (init_weights and resize_token_embeddings call it);
    peers_shims leaves it out because RAM++ has no LM head."""
    get_out = getattr(self, "get_output_embeddings", None)
    out = get_out() if get_out else None
    if out is None or not getattr(self.config, "tie_word_embeddings", True):
        return
    base = getattr(self, self.base_model_prefix, self)
    out.weight = base.get_input_embeddings().weight


def _tied(f):
    def g(self, *a, **k):
        r = f(self, *a, **k)
        tie_weights(self)
        return r
    return g


def official(repo=None):
    repo = peers_shims.official_repo("tag2text", "peers_tag2text", repo)
    outs = sys.modules["transformers.modeling_outputs"]
    for n in list(vars(outs)):
        if isinstance(getattr(outs, n), type) and issubclass(getattr(outs, n), peers_shims.ModelOutput):
            setattr(outs, n, type(n, (ModelOutput,), {}))
    sys.modules["transformers.file_utils"].ModelOutput = ModelOutput
    sys.modules["transformers"].BertTokenizer = BertTokenizer
    peers_shims.PreTrainedModel.generate = generate
    P = peers_shims.PreTrainedModel
    if not getattr(P, "_t2t_tied", False):
        P.init_weights = _tied(P.init_weights)
        P.resize_token_embeddings = _tied(P.resize_token_embeddings)
        P._t2t_tied = True
    return peers_shims.import_official(repo, "tag2text")


set_threads = peers_shims.set_threads


def build(tt):
    # inference_tag2text.py's constructor (its delete_tag_index and threshold are the defaults).
    return tt.Tag2Text(image_size=SIZE, vit="swin_b")


def load(tt, ru, pth):
    # The official constructor and loader print to stdout, where our keys go.
    with contextlib.redirect_stdout(sys.stderr):
        m = build(tt)
        m, msg = ru.load_checkpoint_swinbase(m, pth, {"image_size": SIZE})
    peers_shims.check_loaded(msg, pth, "peers_tag2text")
    td = m.text_decoder
    if td.cls.predictions.decoder.weight is not td.bert.embeddings.word_embeddings.weight:
        sys.exit("peers_tag2text: the LM head is not tied to the word embeddings")
    return m.eval()


def make_model(out, seed):
    tt, ru, _ = official()
    torch.manual_seed(seed)
    m = build(tt)
    torch.save({"model": m.state_dict()}, out + ".tmp")
    os.replace(out + ".tmp", out)
    load(tt, ru, out)
    print("peers_tag2text: wrote %s (%d parameters, seed %d)" % (out, sum(p.numel() for p in m.parameters()), seed),
          file=sys.stderr)


def worker(ext, model):
    """Ours, one caption per line read on stdin: prints seconds and the caption."""
    import sqlite3
    db = sqlite3.connect(":memory:")
    db.enable_load_extension(True)
    db.load_extension(ext)
    db.execute("SELECT ram_load(?)", (model,)).fetchone()
    k = 0
    for line in sys.stdin:
        path = line.strip()
        with open(path, "rb") as f:
            blob = f.read()
        # The extension caches an image's results by a hash of its bytes: 8
        # bytes after the end of the file give another key and the same pixels.
        k += 1
        blob += k.to_bytes(8, "little")
        t = time.perf_counter()
        cap = db.execute("SELECT ram_caption(?)", (blob,)).fetchone()[0]
        print("%.4f\t%s" % (time.perf_counter() - t, cap), flush=True)


def run(pth, ours, ext, image, runs):
    tt, ru, get_transform = official()
    from PIL import Image
    m = load(tt, ru, pth)
    x = get_transform(image_size=SIZE)(Image.open(image).convert("RGB")).unsqueeze(0)
    for th in (1, 2):
        env = dict(os.environ, RAM_THREADS=str(th))
        w = subprocess.Popen([sys.executable, os.path.abspath(__file__), "worker", ext, ours], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env=env)
        # At 2 threads the official code also runs with torch's own pool at 1
        # thread and OpenBLAS's at 2 (the two pools can compete for the
        # cores); its better setting is its figure.
        settings = [th] + ([1] if th > 1 else [])
        t_off = {k: [] for k in settings}
        t_ours = []
        for r in range(-1, runs):
            for k in settings:
                set_threads(th, k)
                t = time.perf_counter()
                with torch.no_grad():
                    caps, tags = m.generate(x, tag_input=None, max_length=50, return_tag_predict=True)
                if r >= 0:  # the first round warms up (page-in of the weights)
                    t_off[k].append(time.perf_counter() - t)
            w.stdin.write(image + "\n")
            w.stdin.flush()
            sec, cap = w.stdout.readline().rstrip("\n").split("\t", 1)
            if r >= 0:
                t_ours.append(float(sec))
        w.stdin.close()
        w.wait()
        ours_s = float(np.median(t_ours))
        med = {k: float(np.median(v)) for k, v in t_off.items()}
        if th > 1:
            print("t2t_official_generate_s_%dt_intraop1 %.4f" % (th, med[1]))
        best = min(med.values())
        print("t2t_official_generate_s_%dt %.4f" % (th, best))
        print("t2t_ours_caption_s_%dt %.4f" % (th, ours_s))
        print("t2t_speedup_vs_official_%dt %.2f" % (th, best / ours_s))
        sys.stdout.flush()
    print("t2t_official_caption %s" % caps[0])
    print("t2t_ours_caption %s" % cap)
    print("t2t_same_caption %d" % (caps[0] == cap))
    print("t2t_official_tags %s" % tags[0])


def main():
    a = sys.argv[1:]
    if a[:1] == ["make-model"] and len(a) >= 2:
        seed = int(a[a.index("--seed") + 1]) if "--seed" in a else 14
        make_model(a[1], seed)
    elif a[:1] == ["run"] and len(a) >= 5:
        run(a[1], a[2], a[3], a[4], int(a[5]) if len(a) > 5 else 3)
    elif a[:1] == ["worker"] and len(a) == 3:
        worker(a[1], a[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
