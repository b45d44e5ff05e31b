"""all-MiniLM-L6-v2 as shipped, jaxbert vs the torch stack (benchmarks/reference.py):
fidelity (hidden states, token ids, zero-shot STS-B, fine-tuning, export) and speed
(embedding throughput and fine-tuning wall time, each stack with its in-run peak)."""

from __future__ import annotations

import statistics
from pathlib import Path

from benchmarks.tables._format import fixed, load, not_measured, num, source, table

COMMAND = ".venv-bench/bin/python benchmarks/reference.py"
MACHINE = "the shared 2-core CPU machine (load average in the results file)"
FILES = ("reference.json",)


def fidelity(res: dict) -> str:
    rows = []
    if "parity" in res:
        p = res["parity"]
        rows.append(("last-layer hidden states vs transformers BertModel (fp32)",
                     f"{p['sentences']} SST-2 dev sentences, {p['tokens']:,} tokens",
                     f"max abs diff {p['max_abs_diff']:.1e}"))  # fmt: skip
    if "tokenization" in res:
        t = res["tokenization"]
        rows.append(("token ids vs the HF fast tokenizer", f"{t['texts']:,} GLUE, CoNLL-2003, "
                     "SQuAD texts (as each task featurizes) + embed's word split",
                     f"{t['total_mismatches']} mismatches"))  # fmt: skip
    if "sts" in res:
        s = res["sts"]
        rows.append(("zero-shot STS-B dev Spearman (model's own pooling)",
                     f"{s['pairs']:,} pairs; sentence-transformers "
                     f"{fixed(s['spearman']['sentence_transformers'], 6)}",
                     f"jaxbert {fixed(s['spearman']['jaxbert'], 6)} (Δ {s['abs_diff']:.1e})"))  # fmt: skip
    if "export" in res:
        e = res["export"]
        rows.append(("export → transformers " + e["architecture"], "MRPC dev predictions",
                     f"{e['identical_predictions']}/{e['dev_examples']} identical"))  # fmt: skip
    if "export_mlm" in res:
        m = res["export_mlm"]
        rows.append((f"export of an MLM-only run → transformers {m['architecture']}",
                     f"{m['texts']} texts, {m['tokenizer']}",
                     f"{m['identical_token_ids']}/{m['texts']} identical token ids, "
                     f"logits within {m['max_abs_logit_diff']:.1e}"))  # fmt: skip
    if "export_run" in res:
        r = res["export_run"]
        rows.append((f"export of a trained run → transformers {r['architecture']}",
                     f"{r['run']}; SST-2 dev, {r['texts']} texts",
                     f"{r['identical_token_ids']}/{r['texts']} identical token ids, MLM logits "
                     f"within {r['max_abs_logit_diff']:.1e} (largest {r['max_abs_logit']:.1f}), "
                     f"argmax agreement {r['argmax_agreement']:.4f}"))  # fmt: skip
    if not rows:
        return not_measured(f"{COMMAND} fetch parity tokenization sts")
    return table(("check", "on", "result"), rows) + source(
        f"{COMMAND} parity tokenization sts export export-mlm export-run",
        MACHINE,
        files=FILES,
    )


def speed(res: dict) -> str:
    rows = []
    e = res.get("embed_speed")
    if e:
        names = {"jaxbert": "jaxbert `embed`", "torch_fp32": "sentence-transformers encode, fp32",
                 "torch_bf16_autocast": "sentence-transformers encode, bf16 autocast"}  # fmt: skip
        peak = {"jaxbert": e["peaks_gflops"]["xla_fp32"]}
        base = e["stacks"]["torch_fp32"]["median_s"]
        for k, r in e["stacks"].items():
            own = peak.get(k, e["peaks_gflops"]["torch_fp32"])
            rows.append((f"embedding {e['sentences']:,} SST-2 + STS-B sentences", names[k],
                         num(r["sentences_per_s"], 0) + " sentences/s",
                         f"{fixed(base / r['median_s'])}×", f"{num(r['gflops'], 0)} of {num(own, 0)}",
                         f"{fixed(100 * r['fraction_of_own_fp32_peak'], 0)}%"))  # fmt: skip
    if not rows:
        return not_measured(f"{COMMAND} embed-speed")
    header = ("work", "stack", "time / throughput", "speed vs torch fp32", "GFLOP/s of own peak",
              "of peak")  # fmt: skip
    load_note = f" Load average during embed-speed: {e['load_average']}" if e else ""
    return table(header, rows) + source(
        f"{COMMAND} embed-speed", MACHINE + "." + load_note, files=FILES
    )


def tokenization(res: dict) -> str:
    t = res.get("tokenization")
    if not t:
        return not_measured(f"{COMMAND} tokenization")
    rows = [(name, f"{s['texts']:,}", s["mismatches"]) for name, s in t["sets"].items()]
    return table(("texts", "count", "mismatches"), rows) + source(
        f"{COMMAND} tokenization", MACHINE, files=FILES
    )


WORD_SENSE_COMMAND = (
    "jaxbert eval-embeddings --init $MODEL --task wic sts --corrections none,center,whiten,abtt "
    "--answers runs/reference/answers-minilm --output benchmarks/results/embeddings_minilm.json; "
    "the same with --task wsd --corrections none,center --output "
    "benchmarks/results/embeddings_minilm_wsd.json; the same with --task wordsim --corpus "
    "../shared/data/wikipedia --sentences 20000 --output "
    "benchmarks/results/embeddings_minilm_wordsim.json"
)


def _task(*results: dict | None, task: str) -> dict | None:
    return next((r["tasks"][task] for r in results if r and task in r.get("tasks", {})), None)


def word_sense(results_dir: Path) -> str:
    """all-MiniLM-L6-v2 beside the tiny cpu_wiki model on WiC, WSD and STS-B, uncorrected."""
    mini = load(results_dir, "embeddings_minilm")
    mini_wsd = load(results_dir, "embeddings_minilm_wsd")
    mini_ws = load(results_dir, "embeddings_minilm_wordsim")
    tiny = load(results_dir, "embeddings_cpu_wiki_local")
    if not mini:
        return not_measured(WORD_SENSE_COMMAND)
    rows = []
    for name, res in (("all-MiniLM-L6-v2 (its own recipe: last layer)", (mini, mini_wsd, mini_ws)),
                      ("tiny cpu_wiki model (last4)", (tiny,))):  # fmt: skip
        wic, wsd, sts, ws = (_task(*res, task=t) for t in ("wic", "wsd", "sts", "wordsim"))
        cell = lambda v: "–" if v is None else fixed(100 * v, 1)  # noqa: E731
        rows.append((name,
                     cell(wic and wic["results"]["none"]["dev_accuracy"]),
                     cell(wic and wic["results"]["none"]["test_accuracy"]),
                     cell(wsd and wsd["results"]["none"]["scores"]["ALL"]["F1"]),
                     cell(sts and sts["results"]["none"]["spearman"]),
                     cell(ws and statistics.fmean(ws["results"]["context"]["none"].values()))))  # fmt: skip
    mfs = _task(mini_wsd, tiny, task="wsd")
    if mfs:
        rows.append(("MFS (SemCor counts)", "–", "–",
                     fixed(100 * mfs["results"]["mfs"]["scores"]["ALL"]["F1"], 1), "–", "–"))  # fmt: skip
    header = ("encoder", "WiC dev acc", "WiC test acc", "WSD ALL F1", "STS-B dev ρ×100",
              "word similarity ρ×100 (mean of 13 sets, in context)")  # fmt: skip
    files = (
        "embeddings_minilm.json",
        "embeddings_minilm_wsd.json",
        "embeddings_minilm_wordsim.json",
        "embeddings_cpu_wiki_local.json",
    )
    return table(header, rows) + source(WORD_SENSE_COMMAND, MACHINE, files=files)


def tables(results_dir: Path) -> dict[str, str]:
    res = load(results_dir, "reference") or {}
    return {
        "hf_fidelity": fidelity(res),
        "hf_speed": speed(res),
        "hf_tokenization": tokenization(res),
        "hf_word_sense": word_sense(results_dir),
    }
