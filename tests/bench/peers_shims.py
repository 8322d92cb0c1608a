"""peers_shims.py -- stand-ins for the Python packages that the official
RAM++ code imports but Debian does not ship (make bench-peers only).

The official code (xinyu1205/recognize-anything) imports transformers, timm,
fairscale and clip. Debian ships torch, torchvision, numpy, scipy and PIL, but
none of these four, and no other registry is reachable here. install() puts
small modules under their names into sys.modules before the official package is
imported. They are of two kinds:

- import-time only (never called on the RAM++ inference path): fairscale's
  checkpoint_wrapper, timm's ViT/registry/hub helpers (used by create_vit and
  the download path: RAM++ Swin-L builds SwinTransformer and loads a local
  file), clip (open-set label embeddings), the tokenizer's vocabulary (the
  official model only takes len(tokenizer) to size word embeddings that its
  del_selfattention() then deletes: a stand-in of the same length, 30,524 =
  BERT's 30,522 + [DEC] + [ENC], as the goldens were made). Each raises if
  it is ever called, so a shim that matters cannot pass silently.
- called at run time, written to transformers 4.25's and timm 0.4.12's
  documented behaviour for the values the official code uses:
    BertConfig (PretrainedConfig defaults + the json file's keys),
    PreTrainedModel: __init__(config), init_weights() (applies the model's own
      _init_weights to every module), resize_token_embeddings(n), dtype,
      invert_attention_mask(m) = (1 - m[:, None, None, :]) * finfo(dtype).min,
      get_head_mask(None, n) = [None] * n,
    ACT2FN['gelu'] = exact erf GELU (torch.nn.functional.gelu),
    apply_chunking_to_forward(fn, 0, dim, *x) = fn(*x) (chunk size 0: the
      BertConfig default, so never chunked),
    DropPath (identity in eval mode, which is the only mode run here),
    to_2tuple, trunc_normal_ (torch.nn.init.trunc_normal_, the same
      algorithm timm 0.4.12 ships; used only by random initialisation).
  The forward's arithmetic stays the official code's own (bert.py,
  swin_transformer.py, ram_plus.py): these only carry configuration, an
  all-zero attention mask and the activation.

peers_official.py --check-golden runs the official classes with these shims on
the project's golden set (tests/data/golden, made with the real transformers
and timm) and compares the logits, so a shim that changed the arithmetic shows.

Also here, for both peers_official.py and peers_tag2text.py: finding and
importing the official checkout (official_repo, import_official), checking
what its loader loaded (check_loaded), and the thread count (set_threads).
"""
import collections.abc
import ctypes
import json
import logging as _logging
import os
import sys
import types

import torch
import torch.nn.functional as F
from torch import nn


def _module(name, **attrs):
    m = types.ModuleType(name)
    m.__dict__.update(attrs)
    sys.modules[name] = m
    return m


def _never(name):
    def f(*a, **k):
        raise RuntimeError("peers_shims: %s is a stand-in and must not be called on the RAM++ inference path" % name)
    return f


class _NeverClass:
    def __init__(self, *a, **k):
        raise RuntimeError("peers_shims: %s is a stand-in" % type(self).__name__)


# ---- transformers -----------------------------------------------------------

class BertConfig:
    """PretrainedConfig + BertConfig defaults (transformers 4.25) for the keys
    bert.py reads; every key of the json file becomes an attribute."""
    model_type = "bert"

    def __init__(self, **kw):
        d = dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                 intermediate_size=3072, hidden_act="gelu", hidden_dropout_prob=0.1,
                 attention_probs_dropout_prob=0.1, max_position_embeddings=512, type_vocab_size=2,
                 initializer_range=0.02, layer_norm_eps=1e-12, pad_token_id=0,
                 position_embedding_type="absolute", use_cache=True, chunk_size_feed_forward=0,
                 add_cross_attention=False, is_decoder=False, output_attentions=False,
                 output_hidden_states=False, return_dict=True, torchscript=False)
        d.update(kw)
        self.__dict__.update(d)

    @property
    def use_return_dict(self):
        return self.return_dict and not self.torchscript

    @classmethod
    def from_json_file(cls, path):
        with open(path, encoding="utf-8") as f:
            return cls(**json.load(f))


class PreTrainedModel(nn.Module):
    config_class = BertConfig
    base_model_prefix = ""

    def __init__(self, config, *a, **k):
        super().__init__()
        self.config = config

    @property
    def dtype(self):
        return next(self.parameters()).dtype

    @property
    def device(self):
        return next(self.parameters()).device

    def init_weights(self):
        self.apply(self._init_weights)

    def post_init(self):
        self.init_weights()

    def resize_token_embeddings(self, n):
        old = self.get_input_embeddings()
        if n == old.num_embeddings:
            return old
        new = nn.Embedding(n, old.embedding_dim, padding_idx=old.padding_idx)
        self._init_weights(new)
        k = min(n, old.num_embeddings)
        with torch.no_grad():
            new.weight[:k] = old.weight[:k]
        self.set_input_embeddings(new)
        self.config.vocab_size = n
        return new

    def invert_attention_mask(self, m):
        if m.dim() == 3:
            e = m[:, None, :, :]
        elif m.dim() == 2:
            e = m[:, None, None, :]
        else:
            raise ValueError("attention mask of %d dimensions" % m.dim())
        e = e.to(dtype=self.dtype)
        return (1.0 - e) * torch.finfo(self.dtype).min

    def get_head_mask(self, head_mask, n, is_attention_chunked=False):
        if head_mask is not None:
            raise RuntimeError("peers_shims: head masks are not used by RAM++ inference")
        return [None] * n


def apply_chunking_to_forward(forward_fn, chunk_size, chunk_dim, *input_tensors):
    if chunk_size != 0:
        raise RuntimeError("peers_shims: feed-forward chunking is not used by RAM++ (chunk_size_feed_forward 0)")
    return forward_fn(*input_tensors)


class _GELU(nn.Module):
    def forward(self, x):
        return F.gelu(x)


class _Act2Fn(dict):
    def __getitem__(self, key):
        if key != "gelu":
            raise RuntimeError("peers_shims: activation %r is not shimmed" % key)
        return _GELU()


class ModelOutput(collections.OrderedDict):
    """Only returned when return_dict is true; RAM++ inference passes False."""
    def __init__(self, *a, **k):
        raise RuntimeError("peers_shims: ModelOutput is not used by RAM++ inference (return_dict=False)")


class BertTokenizer:
    """Stands in for bert-base-uncased: only len() is used by RAM++."""
    def __init__(self):
        self.n = 30522
        self.additional_special_tokens_ids = []

    @classmethod
    def from_pretrained(cls, name, *a, **k):
        return cls()

    def add_special_tokens(self, d):
        for k, v in d.items():
            vals = v if isinstance(v, list) else [v]
            for _ in vals:
                if k == "additional_special_tokens":
                    self.additional_special_tokens_ids.append(self.n)
                self.n += 1

    def __len__(self):
        return self.n

    def __call__(self, *a, **k):
        raise RuntimeError("peers_shims: the tokenizer is a stand-in (RAM++ tagging never tokenizes)")


def _install_transformers():
    outputs = {n: type(n, (ModelOutput,), {}) for n in (
        "BaseModelOutputWithPastAndCrossAttentions", "BaseModelOutputWithPoolingAndCrossAttentions",
        "CausalLMOutputWithCrossAttentions", "MaskedLMOutput", "MultipleChoiceModelOutput",
        "NextSentencePredictorOutput", "QuestionAnsweringModelOutput", "SequenceClassifierOutput",
        "TokenClassifierOutput")}
    _module("transformers", BertTokenizer=BertTokenizer, __path__=[])
    _module("transformers.activations", ACT2FN=_Act2Fn())
    _module("transformers.file_utils", ModelOutput=ModelOutput)
    _module("transformers.modeling_outputs", **outputs)
    _module("transformers.modeling_utils", PreTrainedModel=PreTrainedModel,
            apply_chunking_to_forward=apply_chunking_to_forward,
            find_pruneable_heads_and_indices=_never("find_pruneable_heads_and_indices"),
            prune_linear_layer=_never("prune_linear_layer"))
    _module("transformers.utils", __path__=[],
            logging=_module("transformers.utils.logging", get_logger=_logging.getLogger))
    _module("transformers.models", __path__=[])
    _module("transformers.models.bert", __path__=[])
    _module("transformers.models.bert.configuration_bert", BertConfig=BertConfig)


# ---- timm, fairscale, clip ---------------------------------------------------

class DropPath(nn.Module):
    def __init__(self, drop_prob=None):
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x):
        if self.training and self.drop_prob:
            raise RuntimeError("peers_shims: DropPath in training mode is not shimmed")
        return x


def to_2tuple(x):
    if isinstance(x, collections.abc.Iterable):
        return x
    return (x, x)


def _install_timm():
    _module("timm", __path__=[])
    _module("timm.models", __path__=[])
    _module("timm.models.layers", DropPath=DropPath, to_2tuple=to_2tuple,
            trunc_normal_=torch.nn.init.trunc_normal_)
    _module("timm.models.hub", download_cached_file=_never("timm download_cached_file"))
    _module("timm.models.vision_transformer", _cfg=_never("timm _cfg"), PatchEmbed=_NeverClass)
    _module("timm.models.registry", register_model=lambda f: f)
    _module("timm.models.helpers", named_apply=_never("timm named_apply"),
            adapt_input_conv=_never("timm adapt_input_conv"))


def _install_fairscale():
    _module("fairscale", __path__=[])
    _module("fairscale.nn", __path__=[])
    _module("fairscale.nn.checkpoint", __path__=[])
    _module("fairscale.nn.checkpoint.checkpoint_activations",
            checkpoint_wrapper=_never("fairscale checkpoint_wrapper"))


def _install_clip():
    _module("clip", __path__=[], clip=_module("clip.clip", load=_never("clip.load"), tokenize=_never("clip.tokenize")))


def install():
    """Registers the stand-ins for whatever of the four is not installed."""
    import importlib.util
    if importlib.util.find_spec("transformers") is None:
        _install_transformers()
    if importlib.util.find_spec("timm") is None:
        _install_timm()
    if importlib.util.find_spec("fairscale") is None:
        _install_fairscale()
    if importlib.util.find_spec("clip") is None:
        _install_clip()


def official_repo(module, who, repo=None):
    """The official checkout (repo, else RAM_OFFICIAL_REPO) that holds
    ram/models/MODULE.py, once the stand-ins are installed; exits with a
    message naming who when there is none."""
    repo = repo or os.environ.get("RAM_OFFICIAL_REPO")
    if not repo or not os.path.isfile(os.path.join(repo, "ram", "models", module + ".py")):
        sys.exit("%s: RAM_OFFICIAL_REPO must name a checkout of xinyu1205/recognize-anything "
                 "(see docs/BENCH.md); got %r" % (who, repo))
    install()
    return repo


def import_official(repo, module):
    """Imports ram.models.MODULE from the checkout repo (official_repo's);
    returns it, ram.models.utils and ram.transform.get_transform."""
    sys.path.insert(0, os.path.abspath(repo))
    import importlib
    # ram.models re-exports each model's function under its module's name:
    # the module itself is sys.modules' entry.
    importlib.import_module("ram.models." + module)
    from ram.transform import get_transform
    return sys.modules["ram.models." + module], sys.modules["ram.models.utils"], get_transform


def check_loaded(msg, pth, who):
    """Exits when the official loader's load_state_dict result msg misses a
    key other than the buffers the official code rebuilds itself
    (relative_position_index, attn_mask), or has unexpected ones."""
    bad = [k for k in msg.missing_keys if "relative_position_index" not in k and "attn_mask" not in k]
    if bad or msg.unexpected_keys:
        sys.exit("%s: %s does not load: missing %s unexpected %s" % (who, pth, bad[:5], msg.unexpected_keys[:5]))


try:
    _openblas = ctypes.CDLL("libopenblas.so.0")
except OSError:
    _openblas = None


def have_openblas():
    """Whether set_threads reaches OpenBLAS's pool (printed by the workers)."""
    return _openblas is not None


def set_threads(n, torch_n=None):
    """Debian's torch runs its large products in OpenBLAS's own thread pool,
    which torch.set_num_threads does not reach: both are set, so "n threads"
    means n cores busy, as ram_set_threads does for us (torch_n: torch's
    intra-op count when it differs)."""
    torch.set_num_threads(torch_n or n)
    if _openblas is not None:
        _openblas.openblas_set_num_threads(n)
