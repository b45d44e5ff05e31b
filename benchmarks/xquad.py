"""XQuAD zero-shot: fine-tune on English SQuAD, score every XQuAD language, per init.

Trains on SQuAD v1.1 dev's 80% article split with XQuAD's 240 paragraphs removed
(`squad.exclude_paragraphs_from`), picks the best epoch on the other 20%, and scores
XQuAD in each language with those parameters (EM / F1). The multilingual checkpoint
(default: `benchmarks/multilingual.py`'s α = 0.7 mixture) is compared with the same
architecture and tokenizer from scratch. Windows are 128 tokens (doc stride 64), the
length the checkpoint was pretrained at. Results: `benchmarks/results/xquad.json`.

    nohup .venv/bin/python benchmarks/xquad.py > runs/xquad.log 2>&1 &
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pretrain_sweep import JAXBERT, MALLOC, ROOT  # noqa: E402

XQUAD = ROOT.parent / "shared" / "data" / "multilingual" / "parallel" / "xquad"
RESULTS = ROOT / "benchmarks" / "results" / "xquad.json"
LANGS = ("en", "de", "vi", "zh", "tr", "es")  # es: a language the checkpoint never saw


def finetune(init: str, tokenizer: str, out: Path, lr: float, epochs: int) -> dict:
    """One fine-tune, or the finished one already in `out` with the same init, lr and
    epochs (rerunning the script resumes the list instead of redoing 25-minute runs)."""
    done, used = out / "metrics.json", out / "config.json"
    if done.exists() and used.exists():
        c = json.loads(used.read_text())
        if (c["init"], c["optimizer"]["learning_rate"], c["num_epochs"]) == (init, lr, epochs):
            return json.loads(done.read_text())
    files = ",".join(str(XQUAD / f"xquad.{lang}.json.gz") for lang in LANGS)
    keys = {
        "init": init, "squad.exclude_paragraphs_from": XQUAD / "xquad.en.json.gz",
        "squad.eval_files": files, "max_seq_length": 128, "squad.doc_stride": 64,
        "squad.max_query_length": 32, "optimizer.learning_rate": lr, "num_epochs": epochs,
        "output_dir": out, "overwrite": "true", "tokenizer": tokenizer,
    }  # fmt: skip
    if init == "scratch":  # the checkpoint's shape: tiny, pretrained without dropout
        keys |= {"model.hidden_dropout": 0.0, "model.attention_dropout": 0.0}
    cmd = [*JAXBERT, "finetune", "--config", str(ROOT / "configs/finetune/squad.py")]
    cmd += [f"--config.{k}={v}" for k, v in keys.items()]
    subprocess.run(cmd, check=True, env={**os.environ, **MALLOC})
    return json.loads((out / "metrics.json").read_text())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pretrained", default=str(ROOT / "runs" / "multi" / "mix_a0.7"))
    p.add_argument("--inits", default="pretrained,scratch")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--tokenizer", default=str(ROOT / "runs" / "multi" / "tokenizer"),
                   help="the pretrained run's tokenizer (scratch uses it too)")  # fmt: skip
    args = p.parse_args()
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for name in args.inits.split(","):
        init = args.pretrained if name == "pretrained" else "scratch"
        out = ROOT / "runs" / "xquad" / name
        metrics = finetune(init, args.tokenizer, out, args.lr, args.epochs)
        results[name] = {"init": init, "lr": args.lr, "epochs": args.epochs, "metrics": metrics}
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
        print(f"== {name}: {json.dumps(metrics)[:600]}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
