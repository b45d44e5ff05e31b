"""Where metrics go: console progress line, metrics.jsonl, TensorBoard, and the final plot.

Only process 0 writes; other processes get a logger that does nothing.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import time
from pathlib import Path


def format_duration(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


def progress_bar(done: int, total: int, width: int = 20) -> str:
    filled = int(width * done / max(total, 1))
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def progress_line(step: int, total: int, m: dict, eta_s: float) -> str:
    parts = [
        f"step {step}/{total} {progress_bar(step, total)}",
        f"loss {m['loss']:.4f} (mlm {m['mlm_loss']:.4f}"
        + (f" nsp {m['nsp_loss']:.4f})" if "nsp_loss" in m else ")"),
        f"acc mlm {m['mlm_accuracy']:.3f}"
        + (f" nsp {m['nsp_accuracy']:.3f}" if "nsp_accuracy" in m else ""),
        f"lr {m['learning_rate']:.2e}",
    ]
    if "tokens_per_s" in m:
        real = f" ({m['real_tokens_per_s']:,.0f} real)" if "real_tokens_per_s" in m else ""
        parts.append(f"{m['tokens_per_s']:,.0f} tok/s{real}")
    if "mfu" in m:
        parts.append(f"MFU {100 * m['mfu']:.1f}%")
    parts.append(f"ETA {format_duration(eta_s)}")
    return " | ".join(parts)


class MetricsLogger:
    """metrics.jsonl (+ TensorBoard) of one run; a write the disk refuses stops the run
    with one line naming the file (`errors.WriteFailed`)."""

    def __init__(self, out_dir: Path, enabled: bool = True, tensorboard: bool = True):
        self.enabled = enabled
        self.out_dir = Path(out_dir)
        self.path = self.out_dir / "metrics.jsonl"
        self.writer = None
        self.jsonl = None
        if not enabled:
            return
        with _writing(self.path):
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self.jsonl = open(self.path, "a")  # noqa: SIM115 — closed in close()
        if tensorboard:
            from tensorboardX import SummaryWriter

            self.writer = SummaryWriter(str(self.out_dir / "tensorboard"))

    def resume_at(self, step: int) -> None:
        """Drops the records after `step`: a resumed run trains and logs those steps again,
        so metrics.jsonl holds each step once (the killed run's later rows are gone)."""
        if not self.enabled or not self.path.exists():
            return
        kept = [line for line in self.path.read_text().splitlines(keepends=True)
                if line.strip() and _step_of(line) <= step]  # fmt: skip
        self.jsonl.close()
        with _writing(self.path):
            from jaxbert.fs import atomic_write_text

            atomic_write_text(self.path, "".join(kept))
            self.jsonl = open(self.path, "a")  # noqa: SIM115 — closed in close()

    def write(self, step: int, split: str, metrics: dict) -> None:
        if not self.enabled:
            return
        record = {"step": step, "split": split, "time": time.time(), **metrics}
        with _writing(self.path):
            self.jsonl.write(json.dumps(record) + "\n")
            self.jsonl.flush()
        if self.writer is not None:
            for key, value in metrics.items():
                self.writer.add_scalar(f"{split}/{key}", value, step)

    def print(self, text: str) -> None:
        if self.enabled:
            print(text, flush=True)

    def close(self) -> None:
        if self.enabled and self.jsonl is not None:
            with contextlib.suppress(OSError):  # a full disk was reported by the write
                self.jsonl.close()
            self.jsonl = None
            if self.writer is not None:
                with contextlib.suppress(OSError):
                    self.writer.close()


def _step_of(line: str) -> float:
    try:
        return json.loads(line)["step"]
    except (ValueError, KeyError, TypeError):
        return float("inf")  # a torn last line of a killed run: dropped


def _writing(path: Path):
    from jaxbert.train.runtime import writing

    return writing(path, "metrics")


def read_metrics(path: Path) -> list[dict]:
    """Records of metrics.jsonl; a resumed run's re-logged steps replace the earlier ones."""
    latest: dict[tuple[str, int], dict] = {}
    with open(path) as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                latest[(r["split"], r["step"])] = r
    return sorted(latest.values(), key=lambda r: (r["split"], r["step"]))


def plot_curves(metrics_path: Path, out_png: Path) -> Path | None:
    """Loss and accuracy curves (train and eval) as one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(metrics_path)
    if not records:
        return None
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    for split, style in (("train", "-"), ("eval", "o--")):
        rows = [r for r in records if r["split"] == split]
        if not rows:
            continue
        steps = [r["step"] for r in rows]
        for ax, keys in (
            (ax_loss, ("mlm_loss", "nsp_loss")),
            (ax_acc, ("mlm_accuracy", "nsp_accuracy")),
        ):
            # a mixture's eval also has CORPUS/mlm_loss and CORPUS/mlm_accuracy per corpus
            per_corpus = sorted(k for k in rows[-1] if "/" in k and k.split("/")[1] in keys)
            for key in [k for k in keys if k in rows[-1]] + per_corpus:
                ax.plot(steps, [r.get(key) for r in rows], style, label=f"{split} {key}")
    ax_loss.set(xlabel="step", ylabel="loss", title="Loss")
    ax_acc.set(xlabel="step", ylabel="accuracy", title="Accuracy", ylim=(0, 1))
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return out_png


def warn(text: str) -> None:
    print(f"warning: {text}", file=sys.stderr, flush=True)
