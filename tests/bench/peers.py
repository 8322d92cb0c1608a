"""peers.py -- the driver of make bench-peers (run by tests/bench/peers.sh,
which prepares the models; see docs/BENCH.md).

    /usr/bin/python3 tests/bench/peers.py OUT_DIR BENCH_IMAGE PHOTO...

Starts one worker process per engine, each loading its model once:
  ours      build/bench/peers_ours, with every model file given (fp32 and,
            when present, bf16 and int8)
  official  tests/bench/peers_official.py worker (the official PyTorch code)
  ort       tests/bench/peers_ort.mjs (ONNX Runtime, CPU provider)
and speaks a one-line protocol to them (threads N, load FILE, run [NAME],
probs [NAME] PREFIX). For each thread count (1 then 2): every worker is set
to it and does one warm-up forward, then RUNS rounds in which each path does
one forward, the order rotating from round to round, so a change of the
machine's load in a given minute hits every path alike. Latency = median of
the RUNS forwards (preprocessed 384x384 tensor -> probabilities; decoding and
preprocessing are not timed for anyone). Ratios (peer / ours fp32) are taken
between medians of the same rounds.

Fidelity, at 2 threads after the timing: each photo through every path;
against the official logits: max |dp|, max |dlogit|, tag decisions that
differ (official rule sigmoid(logit) > threshold; thresholds of the official
ram_tag_list_threshold.txt), and the largest distance of a differing decision
from its threshold. Ours goes from the photo file through its own decoding
and preprocessing (the product's path: preprocessing differences count);
ORT is given the official preprocessing's tensor (the model alone). Our
logits come from peers_ours's tagger call beside the public probabilities
(checked to give them): a float32 probability near 1 does not determine its
logit.

Environment: RAM_PEERS_RUNS (default 5), RAM_PEERS_THREADS (default "1 2"),
RAM_PEERS_OURS ("fp32=F bf16=F int8=F", by peers.sh), RAM_PEERS_OFFICIAL_PTH,
RAM_PEERS_ONNX, RAM_PEERS_NODE_MODULES, RAM_OFFICIAL_REPO, RAM_PEERS_SKIP
(e.g. "ort" or "official": leave a peer out), RAM_PEERS_PYTHON.
"""
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


class Worker:
    def __init__(self, name, argv, paths, log):
        self.name = name
        self.paths = paths  # the timed paths this worker serves: [(label, model name or None)]
        self.log = open(log, "w")  # its stderr (loader chatter, warnings)
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
                                  text=True, bufsize=1)
        self.ready = self.read()
        if not self.ready.startswith("ready"):
            raise RuntimeError("%s did not start: %s" % (name, self.ready))

    def read(self):
        line = self.p.stdout.readline()
        if not line:
            raise RuntimeError("%s exited (status %s)" % (self.name, self.p.poll()))
        return line.strip()

    def ask(self, *words):
        self.p.stdin.write(" ".join(str(w) for w in words) + "\n")
        self.p.stdin.flush()
        a = self.read()
        if a.startswith("error"):
            raise RuntimeError("%s: %s -> %s" % (self.name, " ".join(map(str, words)), a))
        return a

    def close(self):
        try:
            self.p.stdin.write("quit\n")
            self.p.stdin.flush()
            self.p.wait(timeout=60)
        except Exception:
            self.p.kill()
        self.log.close()


def run_one(w, model):
    a = w.ask("run", model) if model else w.ask("run")
    return float(a.split()[1])


def cpu_model():
    """Model name plus vendor, family and model numbers (a virtual machine's
    model name can be generic)."""
    info = {}
    try:
        for line in open("/proc/cpuinfo"):
            k, _, v = line.partition(":")
            k = k.strip()
            if k in ("model name", "vendor_id", "cpu family", "model") and k not in info:
                info[k] = v.strip()
    except OSError:
        return platform.processor()
    return "%s (%s family %s model %s)" % (info.get("model name", "?"), info.get("vendor_id", "?"),
                                           info.get("cpu family", "?"), info.get("model", "?"))


def openblas_core():
    """The kernel set OpenBLAS picks in this environment (what the official
    PyTorch and our OpenBLAS products run): a DYNAMIC_ARCH OpenBLAS that does
    not know the CPU falls back to old generic kernels unless
    OPENBLAS_CORETYPE names one."""
    try:
        import ctypes
        lib = ctypes.CDLL("libopenblas.so.0")
        lib.openblas_get_corename.restype = ctypes.c_char_p
        lib.openblas_get_config.restype = ctypes.c_char_p
        return "%s (%s)" % (lib.openblas_get_corename().decode(), lib.openblas_get_config().decode())
    except (OSError, AttributeError):
        return None


def loadavg():
    try:
        return open("/proc/loadavg").read().split()[:3]
    except OSError:
        return []


def cpu_flags():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("flags"):
                f = set(line.split(":", 1)[1].split())
                return " ".join(x for x in ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16")
                                if x in f)
    except OSError:
        pass
    return ""


def official_commit(repo):
    """The checkout's commit (git), or the first line of its .official_commit
    file (a checkout written without .git), or None."""
    if not repo:
        return None
    if os.path.exists(os.path.join(repo, ".git")):
        try:
            r = subprocess.run(["git", "-C", repo, "rev-parse", "HEAD"], capture_output=True, text=True)
            if r.returncode == 0:
                return r.stdout.strip()
        except OSError:
            pass
    f = os.path.join(repo, ".official_commit")
    return open(f).read().split()[0] if os.path.isfile(f) else None


def main(argv):
    if len(argv) < 3:
        sys.exit("usage: peers.py OUT_DIR BENCH_IMAGE [PHOTO...]   # no photo: no fidelity figures")
    out, bench_image, photos = argv[1], argv[2], argv[3:]
    runs = int(os.environ.get("RAM_PEERS_RUNS", "5"))
    threads = [int(t) for t in os.environ.get("RAM_PEERS_THREADS", "1 2").split()]
    skip = set(os.environ.get("RAM_PEERS_SKIP", "").split())
    build = os.environ.get("RAM_PEERS_BUILD", "build")
    py = os.environ.get("RAM_PEERS_PYTHON", "/usr/bin/python3")
    ours = [kv.split("=", 1) for kv in os.environ.get("RAM_PEERS_OURS", "").split()]
    if "official" in skip and "ort" not in skip:
        sys.exit("peers: ONNX Runtime is given the official preprocessing's tensor: it needs the official worker")
    os.makedirs(os.path.join(out, "fidelity"), exist_ok=True)
    t_start = time.time()
    load_start = loadavg()

    workers = []
    print("peers: starting the workers (models load once)", flush=True)
    workers.append(Worker("ours", [os.path.join(build, "bench", "peers_ours")] + ["%s=%s" % tuple(kv) for kv in ours],
                          [("ours " + n, n) for n, _ in ours], os.path.join(out, "peers_ours.log")))
    if "official" not in skip:
        workers.append(Worker("official", [py, os.path.join(HERE, "peers_official.py"), "worker",
                                           os.environ["RAM_PEERS_OFFICIAL_PTH"]], [("official PyTorch", None)],
                              os.path.join(out, "peers_official.log")))
    if "ort" not in skip:
        workers.append(Worker("ort", ["node", os.path.join(HERE, "peers_ort.mjs"), os.environ["RAM_PEERS_ONNX"],
                                      os.environ["RAM_PEERS_NODE_MODULES"]], [("ONNX Runtime", None)],
                              os.path.join(out, "peers_ort.log")))
    for w in workers:
        print("peers:   %s: %s" % (w.name, w.ready), flush=True)
    paths = [(w, label, model) for w in workers for label, model in w.paths]
    # At n > 1 threads Debian's torch is also timed with its own intra-op pool
    # at 1 thread and OpenBLAS at n ("intra1"): the official code's best
    # setting is the one compared.
    alt = [(w, "official, intra-op 1", "intra1") for w in workers if w.name == "official"]

    # The bench image in each worker's own form: the official worker writes
    # its preprocessed tensor, which is what ORT reads.
    off = next((w for w in workers if w.name == "official"), None)
    bench_prefix = os.path.join(out, "fidelity", "bench")
    if off:
        off.ask("load", bench_image)
        off.ask("probs", bench_prefix)

    def load_all(image, prefix):
        for w in workers:
            w.ask("load", prefix + ".input.f32" if w.name == "ort" else image)

    lat = {}
    for th in threads:
        for w in workers:
            w.ask("threads", th)
        load_all(bench_image, bench_prefix)
        timed = paths + (alt if th > 1 else [])
        for w, label, model in timed:  # warm-up
            run_one(w, model)
        times = {label: [] for _, label, _ in timed}
        for r in range(runs):
            k = r % len(timed)
            for w, label, model in timed[k:] + timed[:k]:
                times[label].append(run_one(w, model))
            print("peers: %d thread(s), round %d/%d: %s" % (th, r + 1, runs, ", ".join(
                "%s %.2f s" % (lb, t[-1]) for lb, t in times.items())), flush=True)
        for label, t in times.items():
            lat.setdefault(label, {})[th] = {"median_s": statistics.median(t), "runs_s": t}

    # Fidelity against the official outputs, at the last thread count.
    fid = {}
    if off and photos:
        repo = os.environ["RAM_OFFICIAL_REPO"]
        with open(os.path.join(repo, "ram", "data", "ram_tag_list_threshold.txt")) as f:
            thr = np.array([float(s) for s in f], dtype=np.float32)
        acc = {label: {"max_abs_dp": 0.0, "max_abs_dlogit": 0.0, "decisions_differing": 0,
                       "max_margin_of_differing": 0.0, "photos": 0} for _, label, _ in paths
               if label != "official PyTorch"}
        tagged = 0
        for i, photo in enumerate(photos):
            prefix = os.path.join(out, "fidelity", "photo%02d" % i)
            off.ask("load", photo)
            off.ask("probs", prefix)
            ol = np.fromfile(prefix + ".logits.f32", "<f4").astype(np.float64)
            op = 1.0 / (1.0 + np.exp(-ol))
            od = op > thr
            tagged += int(od.sum())
            for w in workers:
                if w is off:
                    continue
                w.ask("load", prefix + ".input.f32" if w.name == "ort" else photo)
                for label, model in w.paths:
                    if w.name == "ort":
                        w.ask("probs", prefix + ".ort")
                        lg = np.fromfile(prefix + ".ort.logits.f32", "<f4").astype(np.float64)
                        p = 1.0 / (1.0 + np.exp(-lg))
                    else:
                        w.ask("probs", model, prefix + "." + model)
                        p = np.fromfile(prefix + "." + model + ".probs.f32", "<f4").astype(np.float64)
                        lg = np.fromfile(prefix + "." + model + ".logits.f32", "<f4").astype(np.float64)
                        if np.abs(1.0 / (1.0 + np.exp(-lg)) - p).max() > 1e-6:
                            raise RuntimeError("%s: its logits do not give its probabilities" % label)
                    d = (p > thr) != od
                    a = acc[label]
                    a["photos"] += 1
                    a["max_abs_dp"] = max(a["max_abs_dp"], float(np.abs(p - op).max()))
                    a["max_abs_dlogit"] = max(a["max_abs_dlogit"], float(np.abs(lg - ol).max()))
                    a["decisions_differing"] += int(d.sum())
                    if d.any():
                        a["max_margin_of_differing"] = max(a["max_margin_of_differing"],
                                                           float(np.abs(op[d] - thr[d]).max()))
            print("peers: fidelity %d/%d %s" % (i + 1, len(photos), os.path.basename(photo)), flush=True)
        fid = {"photos": [os.path.basename(p) for p in photos], "classes": int(thr.size),
               "official_tags_selected": tagged, "paths": acc}

    for w in workers:
        w.close()

    # The table and peers.json.
    load = loadavg()
    env = {
        "date_utc": datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(), "cpu_flags": cpu_flags(), "cores": os.cpu_count(),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"), "openblas_core": openblas_core(),
        "RAM_ISA": os.environ.get("RAM_ISA"),
        "load_average_at_start": load_start, "load_average_at_end": load,
        "workers": {w.name: w.ready for w in workers},
        "official_commit": official_commit(os.environ.get("RAM_OFFICIAL_REPO")),
        "runs": runs, "threads": threads, "bench_image": bench_image, "seconds": round(time.time() - t_start, 1),
    }
    base = lat.get("ours fp32", {})
    print()
    print("make bench-peers: full-size RAM++ (Swin-L 384, 4,585 tags x 51 descriptions), random weights "
          "from the official code")
    print("%s | %s, %s cores (%s)" % (env["date_utc"], env["cpu"], env["cores"], env["cpu_flags"]))
    print("OPENBLAS_CORETYPE=%s, OpenBLAS kernels %s%s | load average %s at start, %s at end | %.0f s" % (
        env["OPENBLAS_CORETYPE"] or "(unset)", (env["openblas_core"] or "?").split(" ")[0],
        " | RAM_ISA=" + env["RAM_ISA"] if env["RAM_ISA"] else "", " ".join(load_start), " ".join(load),
        time.time() - t_start))
    print("forward latency per image, median of %d after a warm-up, interleaved; x = time / ours fp32 in the "
          "same rounds (x > 1: ours fp32 is faster)" % runs)
    hdr = "%-20s" % "path" + "".join("%22s" % ("%d thread%s" % (t, "s" if t > 1 else "")) for t in threads)
    print(hdr)
    ratios = {}
    for _, label, _ in paths + alt:
        if label not in lat:
            continue
        cells = ""
        for th in threads:
            if th not in lat[label]:
                cells += "%22s" % "-"
                continue
            m = lat[label][th]["median_s"]
            b = base.get(th, {}).get("median_s")
            r = m / b if b else None
            ratios.setdefault(label, {})[th] = r
            cells += "%22s" % ("%.3f s (x%.2f)" % (m, r) if r else "%.3f s" % m)
        print("%-20s%s" % (label, cells))
    for label in ("ours bf16", "ours int8"):
        if label not in lat:
            print("%-20s%s" % (label, "".join("%22s" % "n/a" for _ in threads)))
    if fid:
        print()
        print("fidelity against the official PyTorch outputs, %d photos x %d tags (official selects %d):" % (
            len(fid["photos"]), fid["classes"], fid["official_tags_selected"]))
        print("%-20s %12s %14s %12s %14s" % ("path", "max |dp|", "max |dlogit|", "decisions", "worst margin"))
        for label, a in fid["paths"].items():
            print("%-20s %12.2e %14.2e %12d %14.2e" % (label, a["max_abs_dp"], a["max_abs_dlogit"],
                                                         a["decisions_differing"], a["max_margin_of_differing"]))
        for label in ("ours bf16", "ours int8"):
            if label not in fid["paths"]:
                print("%-20s %12s %14s %12s %14s" % (label, "n/a", "n/a", "n/a", "n/a"))
    res = {"environment": env,
           "latency": {label: {"%dt" % th: v for th, v in d.items()} for label, d in lat.items()},
           "ratio_to_ours_fp32": {label: {"%dt" % th: v for th, v in d.items()} for label, d in ratios.items()},
           "fidelity": fid}
    for label in ("ours bf16", "ours int8"):
        res["latency"].setdefault(label, None)
    with open(os.path.join(out, "peers.json"), "w") as f:
        json.dump(res, f, indent=2)
    print("\npeers: wrote %s (%.0f s)" % (os.path.join(out, "peers.json"), time.time() - t_start))


if __name__ == "__main__":
    main(sys.argv)
