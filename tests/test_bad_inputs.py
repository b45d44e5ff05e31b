"""Bad inputs and faults through the real `jaxbert` CLI: one error line, never a traceback.

Property, for every case in CASES: the command exits with its documented code (2 for a
user mistake, 0 for a documented success), stderr holds exactly ONE
`jaxbert CMD: error: …` line, nothing after it, and it names the file, line, flag or
config key at fault (a regex per case), no output contains "Traceback", and every good
output the case points at (tokenizer, prepared data, pretraining run, checkpoints, an
existing file) has the same checksum afterwards — or, for paths that did not exist,
still does not.

The good outputs are built once (a 2,000-piece tokenizer and prepared data from the
shipped wiki_02.gz, a lowercased tokenizer with another vocabulary, a 2-step micro
pretraining run), then every case runs in the same subprocess
(`tests/fixtures/bad_inputs/driver.py`, which calls `jaxbert.cli.main` per case with
fds 1/2 captured), so jax is imported once: about 1.5 minutes on a busy 2-core machine.
Cases that need a fresh process (signals, SIGKILL) live with the commands' own tests.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DRIVER = REPO / "tests" / "fixtures" / "bad_inputs" / "driver.py"
WIKI = REPO / "corpus" / "wiki_sample" / "wiki_02.gz"
HF_FIXTURE = REPO / "tests" / "fixtures" / "hf_tiny_bert"
FT_FIXTURE = REPO / "tests" / "fixtures" / "finetune"
PRETRAIN_CFG = REPO / "configs" / "pretrain" / "cpu_smoke.py"
GLUE_CFG = REPO / "configs" / "finetune" / "glue.py"
NER_CFG = REPO / "configs" / "finetune" / "ner.py"
ERROR_LINE = re.compile(r"^jaxbert [\w -]+: error: ")
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@dataclasses.dataclass(frozen=True)
class Case:
    """One command line (placeholders in braces), what it must print and must not touch."""

    id: str
    argv: str
    error: str | None  # regex the one error line must match; None: a documented success
    code: int = 2
    guards: tuple[str, ...] = ()  # paths whose checksum (or absence) must not change
    stdout: str = ""  # regex stdout must match (successes)
    creates: tuple[str, ...] = ()  # files a documented success must have written
    xfail: str = ""  # a failure in a file this test's author may not edit: the bug
    permissions: bool = False  # relies on file modes, which root ignores: skipped as root
    multiline: bool = False  # the message may go on with help lines (deliberately)


# --- good outputs ---------------------------------------------------------------------

MICRO = {
    "model.vocab_size": 2000, "model.hidden_size": 32, "model.num_heads": 4,
    "model.intermediate_size": 64, "model.num_layers": 2,
    "data.prepared_dir": "{prep}", "tokenizer": "{prep}/tokenizer",
    "data.max_seq_length": 32, "data.max_predictions_per_seq": 5,
    "data.objective": "mlm_nsp", "data.packing": "pairs", "data.mask_prob": 0.15,
    "train.batch_size": 8, "train.num_steps": 2, "train.log_every": 1,
    "train.eval_every": 0, "checkpoint.every_steps": 2, "optimizer.warmup_steps": 1,
}  # fmt: skip


def pretrain(out: str, **extra) -> str:
    """`jaxbert pretrain` of the micro model on the prepared data, `extra` overriding."""
    values = {**MICRO, "output_dir": out, **{k.replace("__", "."): v for k, v in extra.items()}}
    return f"pretrain --config {PRETRAIN_CFG} " + " ".join(
        f"--config.{k}={v}" for k, v in values.items()
    )


SETUP = [
    f"tokenizer train --corpus {WIKI} --out {{tok}} --vocab-size 2000",
    f"data prepare --corpus {WIKI} --tokenizer {{tok}} --out {{prep}} --workers 0",
    f"tokenizer train --corpus {WIKI} --out {{tok2}} --vocab-size 2000 --lowercase",
    pretrain("{run}"),
]
GOOD = ("{tok}", "{prep}", "{run}", "{hf}", "{in}/afile")
# Damaged copies of the good outputs, made after setup: a cut-short shard, a checkpoint
# whose array data is cut short, a run without its config.json.
FAULTS = [
    ["copytree", "{prep}", "{in}/prep_trunc"],
    ["truncate", "{in}/prep_trunc/shard-00000.tokens.npy", 100],
    ["copytree", "{run}", "{in}/run_trunc"],
    ["truncate", "{in}/run_trunc/checkpoints/*/state/d/*", 10],
    ["copytree", "{run}", "{in}/run_noconfig"],
    ["remove", "{in}/run_noconfig/config.json"],
]


def pt(case_id: str, error: str, xfail: str = "", **extra) -> Case:
    """A pretraining case: refused before anything is written, so its output_dir stays
    absent and the good run is untouched."""
    out = f"{{root}}/pt/{case_id}"
    return Case(case_id, pretrain(out, **extra), error, guards=(out, "{run}"), xfail=xfail)


def ft(case_id: str, extra: str, error: str, spec: str = f"{GLUE_CFG}:sst2", xfail="") -> Case:
    """A fine-tuning case from the good run on the fixture GLUE/CoNLL data."""
    out = f"{{root}}/ft/{case_id}"
    argv = (
        f"finetune --config {spec} --config.init={{run}} --config.data_dir={FT_FIXTURE} "
        f"--config.output_dir={out} --config.batch_size=4 --config.num_epochs=1 "
        f"--config.max_seq_length=32 {extra}"
    )
    return Case(case_id, argv, error, guards=(out, "{run}"), xfail=xfail)


TOK = f"tokenizer train --corpus {WIKI} --vocab-size 2000"
PREP = f"data prepare --corpus {WIKI} --tokenizer {{tok}} --workers 0"
INSPECT = "data inspect --prepared {prep} --out {root}/inspect.jsonl"
TOK_GUARD = ("{tok}",)
PREP_GUARD = ("{prep}",)

DATA_CASES = [
    Case("tok-missing-corpus", "tokenizer train --corpus {root}/nope.txt --out {root}/t1",
         r"nope\.txt.*(does not exist|not found)", guards=("{root}/t1",)),
    Case("tok-empty-corpus", "tokenizer train --corpus {in}/empty.txt --out {tok} --force",
         r"empty\.txt", guards=TOK_GUARD),
    Case("tok-blank-corpus", "tokenizer train --corpus {in}/blank.txt --out {tok} --force",
         r"blank\.txt.*no sentences|no sentences.*blank\.txt", guards=TOK_GUARD),
    Case("tok-truncated-gz", "tokenizer train --corpus {in}/trunc.gz --out {tok} --force "
         "--vocab-size 2000", r"trunc\.gz", guards=TOK_GUARD),
    Case("tok-not-gzip", "tokenizer train --corpus {in}/plain.gz --out {tok} --force",
         r"plain\.gz", guards=TOK_GUARD),
    Case("tok-latin1-strict", "tokenizer train --corpus {in}/latin1.txt --out {tok} --force "
         "--strict", r"latin1\.txt:3\b", guards=TOK_GUARD),
    Case("tok-vocab-60000", f"{TOK} --out {{tok}} --force --vocab-size 60000",
         r"vocab.size.*60000|60000.*vocab", guards=TOK_GUARD),
    Case("tok-vocab-10", f"{TOK} --out {{tok}} --force --vocab-size 10",
         r"--vocab-size.*262|--vocab-size must", guards=TOK_GUARD),
    Case("tok-max-sentences-0", f"{TOK} --out {{tok}} --force --max-sentences 0",
         r"--max-sentences", guards=TOK_GUARD),
    Case("tok-vocab-not-int", f"{TOK} --out {{root}}/t2 --vocab-size lots",
         r"--vocab-size.*invalid int", guards=("{root}/t2",)),
    Case("tok-out-is-file", f"{TOK} --out {{in}}/afile", r"afile", guards=("{in}/afile",)),
    Case("tok-out-under-file", f"{TOK} --out {{in}}/afile/sub", r"afile",
         guards=("{in}/afile",)),
    Case("tok-out-under-proc", f"{TOK} --out /proc/jaxbert-bad/tok", r"/proc/jaxbert-bad"),
    Case("tok-out-read-only", f"{TOK} --out {{in}}/ro/tok", r"ro/tok.*permission denied",
         guards=("{in}/ro",), permissions=True),
    Case("tok-no-corpus-flag", "tokenizer train --out {root}/t3",
         r"required: --corpus", guards=("{root}/t3",)),
    Case("prep-missing-corpus", "data prepare --corpus {root}/nope.txt --tokenizer {tok} "
         "--out {prep} --force", r"nope\.txt", guards=PREP_GUARD),
    Case("prep-empty-corpus", "data prepare --corpus {in}/empty.txt --tokenizer {tok} "
         "--out {prep} --force", r"empty\.txt", guards=PREP_GUARD),
    Case("prep-blank-corpus", "data prepare --corpus {in}/blank.txt --tokenizer {tok} "
         "--out {prep} --force", r"blank\.txt", guards=PREP_GUARD),
    Case("prep-truncated-gz", "data prepare --corpus {in}/trunc.gz --tokenizer {tok} "
         "--out {prep} --force --workers 0", r"trunc\.gz", guards=PREP_GUARD),
    Case("prep-not-gzip", "data prepare --corpus {in}/plain.gz --tokenizer {tok} "
         "--out {prep} --force --workers 0", r"plain\.gz", guards=PREP_GUARD),
    Case("prep-latin1-strict", "data prepare --corpus {in}/latin1.txt --tokenizer {tok} "
         "--out {prep} --force --strict --workers 0", r"latin1\.txt:3\b", guards=PREP_GUARD),
    Case("prep-shard-max-tokens-0", f"{PREP} --out {{prep}} --force --shard-max-tokens 0",
         r"--shard-max-tokens", guards=PREP_GUARD),
    Case("prep-workers-minus-1", f"data prepare --corpus {WIKI} --tokenizer {{tok}} "
         "--out {prep} --force --workers -1", r"--workers", guards=PREP_GUARD),
    Case("prep-missing-tokenizer", f"data prepare --corpus {WIKI} --tokenizer {{root}}/nope "
         "--out {prep} --force", r"nope", guards=PREP_GUARD),
    Case("prep-tokenizer-is-junk", f"data prepare --corpus {WIKI} --tokenizer {{in}}/afile "
         "--out {prep} --force", r"afile", guards=PREP_GUARD),
    Case("prep-out-is-file", f"{PREP} --out {{in}}/afile", r"afile", guards=("{in}/afile",)),
    Case("prep-out-under-file", f"{PREP} --out {{in}}/afile/sub", r"afile",
         guards=("{in}/afile",)),
    Case("prep-out-under-proc", f"{PREP} --out /proc/jaxbert-bad/prep", r"/proc/jaxbert-bad"),
    Case("prep-out-read-only", f"{PREP} --out {{in}}/ro/prep", r"ro/prep.*permission denied",
         guards=("{in}/ro",), permissions=True),
    Case("prep-out-foreign-dir", f"{PREP} --out {{in}}/foreign", r"foreign",
         guards=("{in}/foreign",)),
    Case("inspect-n-0", f"{INSPECT} --n 0", r"--n must be >= 1", guards=PREP_GUARD),
    Case("inspect-mask-prob-0.9", f"{INSPECT} --mask-prob 0.9", r"--mask-prob.*0\.9"),
    Case("inspect-seq-4", f"{INSPECT} --max-seq-length 4", r"--max-seq-length"),
    Case("inspect-preds-neg", f"{INSPECT} --max-predictions-per-seq -1",
         r"--max-predictions-per-seq"),
    Case("inspect-missing-prepared", "data inspect --prepared {root}/nope --out "
         "{root}/i.jsonl", r"nope", guards=("{root}/i.jsonl",)),
    Case("inspect-corrupt-manifest", "data inspect --prepared {in}/badprep --out "
         "{root}/i.jsonl", r"badprep.*manifest\.json", guards=("{root}/i.jsonl",)),
    Case("inspect-truncated-shard", "data inspect --prepared {in}/prep_trunc --n 2 --out "
         "{root}/i.jsonl", r"prep_trunc/shard-00000\.\S*npy unreadable", guards=("{root}/i.jsonl",)),
    Case("inspect-out-is-dir", "data inspect --prepared {prep} --n 2 --out {in}/foreign",
         r"foreign", guards=("{in}/foreign",)),
]  # fmt: skip

PRETRAIN_CASES = [
    pt("pt-unknown-key", r"unknown config key: config\.model\.bogus", model__bogus=1),
    pt("pt-wrong-type", r"config\.train\.batch_size: expected int", train__batch_size="abc"),
    pt("pt-num-heads-3", r"num_heads", model__num_heads=3),
    pt("pt-negative-lr", r"config\.optimizer\.learning_rate", optimizer__learning_rate=-1e-3),
    pt("pt-warmup-minus-1", r"config\.optimizer\.warmup_steps", optimizer__warmup_steps=-1),
    pt("pt-ckpt-every-0", r"config\.checkpoint\.every_steps", checkpoint__every_steps=0),
    pt("pt-batch-0", r"config\.train\.batch_size", train__batch_size=0),
    pt("pt-num-steps-0", r"config\.train\.num_steps", train__num_steps=0),
    pt("pt-seq-4096", r"config\.data\.max_seq_length", data__max_seq_length=4096),
    pt("pt-preds-negative", r"config\.data\.max_predictions_per_seq", data__max_predictions_per_seq=-1),
    pt("pt-preds-too-few-for-mask-prob", r"config\.data\.max_predictions_per_seq=5 is too small.*needs >= 12",
       data__mask_prob=0.4),
    pt("pt-objective-bogus", r"config\.data\.objective='bogus'", data__objective="bogus"),
    pt("pt-packing-bogus", r"config\.data\.packing='bogus'", data__packing="bogus"),
    pt("pt-nsp-with-packing", r"objective='mlm_nsp' needs config\.data\.packing='pairs'",
       data__packing="full_sentences"),
    pt("pt-mask-prob-0.9", r"config\.data\.mask_prob", data__mask_prob=0.9),
    pt("pt-optimizer-sgd", r"config\.optimizer\.name.*sgd", optimizer__name="sgd"),
    pt("pt-masking-bogus", r"config\.data\.masking.*bogus", data__masking="bogus"),
    pt("pt-tokenizer-missing", r"config\.tokenizer=\S*nope", tokenizer="{root}/nope"),
    pt("pt-tokenizer-other-vocab", r"config\.tokenizer=\S*tok2", tokenizer="{tok2}"),
    pt("pt-vocab-mismatch", r"config\.model\.vocab_size=1000", model__vocab_size=1000),
    pt("pt-prepared-missing", r"nope", data__prepared_dir="{root}/nope"),
    pt("pt-prepared-corrupt", r"badprep.*manifest\.json", data__prepared_dir="{in}/badprep"),
    pt("pt-truncated-shard", r"prep_trunc/shard-00000\.\S*npy unreadable",
       data__prepared_dir="{in}/prep_trunc"),
    pt("pt-bool-type", r"config\.train\.batch_size: expected int", train__batch_size="True"),
    Case("pt-resume-changed-model", pretrain("{run}", model__num_layers=4),
         r"config\.model\.num_layers", guards=("{run}",)),
    Case("pt-config-syntax-error", "pretrain --config {in}/syntax.py",
         r"syntax\.py:3: syntax error"),
    Case("pt-config-raises-on-import", "pretrain --config {in}/raises.py",
         r"raises\.py:2: NameError"),
    Case("pt-config-raises-in-get-config", "pretrain --config {in}/raises_late.py",
         r"raises_late\.py:5: NameError"),
    Case("pt-config-unexpected-arg", f"pretrain --config {PRETRAIN_CFG}:big",
         r"cpu_smoke\.py: .*get_config"),
    Case("pt-config-no-get-config", "pretrain --config {in}/noget.py",
         r"noget\.py: defines no get_config"),
    Case("pt-config-json", "pretrain --config {run}/config.json", r"config\.json: a config file"),
    Case("pt-config-missing", "pretrain --config {root}/nope.py",
         r"config file not found: \S*nope\.py"),
    Case("pt-override-no-value", f"pretrain --config {PRETRAIN_CFG} --config.train.num_steps",
         r"--config\.train\.num_steps needs a value"),
    Case("pt-stray-argument", f"pretrain --config {PRETRAIN_CFG} --bogus",
         r"unrecognized argument '--bogus'"),
]  # fmt: skip

PLAN = f"plan --config {PRETRAIN_CFG} --devices 1"
PLAN_CASES = [
    Case("plan-num-heads-3", f"{PLAN} --config.model.num_heads=3", r"num_heads"),
    Case("plan-seq-4096", f"{PLAN} --config.data.max_seq_length=4096",
         r"config\.data\.max_seq_length"),
    Case("plan-mfu-0", f"{PLAN} --mfu 0", r"--mfu must be in \(0, 1\]"),
    Case("plan-devices-0", f"plan --config {PRETRAIN_CFG} --devices 0", r"--devices must be positive"),
    Case("plan-mesh-2-axes", f"{PLAN} --mesh=1,2", r"--mesh"),
    Case("plan-mesh-not-int", f"{PLAN} --mesh=a,b,c", r"--mesh"),
    Case("plan-memory-0", f"{PLAN} --device-memory-gib 0", r"--device-memory-gib"),
    Case("plan-unknown-key", f"{PLAN} --config.train.bogus=1",
         r"unknown config key: config\.train\.bogus"),
    Case("plan-fill-without-devices", f"plan --config {PRETRAIN_CFG}", r"--devices"),
    Case("plan-accelerator", f"{PLAN} --accelerator tpu9", r"--accelerator: invalid choice"),
    Case("params-unknown-size", "params huge", r"unknown size 'huge'"),
    Case("params-vocab-0", "params tiny --vocab-size 0", r"--vocab-size must be positive"),
    Case("params-vocab-not-int", "params --vocab-size x", r"--vocab-size: invalid int"),
]  # fmt: skip

FINETUNE_CASES = [
    Case("ft-unknown-task-arg", f"finetune --config {GLUE_CFG}:bogus",
         r"glue\.py:\d+: .*unknown GLUE task 'bogus'"),
    ft("ft-unknown-task-key", "--config.task=bogus", r"config\.task: .*'bogus'"),
    ft("ft-missing-init", "--config.init={root}/nope", r"nope"),
    ft("ft-negative-lr", "--config.optimizer.learning_rate=-1e-5",
       r"config\.optimizer\.learning_rate"),
    ft("ft-old-lr-key", "--config.learning_rate=2e-5", r"unknown config key: config\.learning_rate"),
    ft("ft-batch-0", "--config.batch_size=0", r"config\.batch_size"),
    ft("ft-seeds-0", "--config.seeds=0", r"config\.seeds='0' must be a seed count >= 1"),
    ft("ft-seeds-repeated", "--config.seeds=1,1", r"config\.seeds='1,1' must be distinct"),
    dataclasses.replace(ft("ft-missing-data", "--config.data_dir={root}/nope", r"nope"),
                        multiline=True),
    ft("ft-tsv-bad-bytes", "--config.data_dir={in}/ft_bytes", r"train\.tsv:3\b"),
    ft("ft-tsv-bad-row", "--config.data_dir={in}/ft_row", r"train\.tsv:3\b"),
    ft("ft-tsv-bad-label", "--config.data_dir={in}/ft_label", r"train\.tsv:3\b.*label"),
    ft("ft-conll-bad-line", "--config.data_dir={in}/ft_conll", r"eng\.train:4\b", spec=NER_CFG),
    ft("ft-conll-bad-tag", "--config.data_dir={in}/ft_tag", r"eng\.train:4\b.*tag", spec=NER_CFG),
    ft("ft-init-truncated", "--config.init={in}/run_trunc", r"run_trunc"),
    ft("ft-init-hf-corrupt", "--config.init={in}/hf_corrupt", r"hf_corrupt/model\.safetensors"),
    ft("ft-tokenizer-other-vocab", "--config.tokenizer={tok2}/tokenizer.model",
       r"config\.tokenizer"),
]  # fmt: skip

CONVERT_CASES = [
    Case("cv-missing-src", "convert hf-to-jaxbert {root}/nope {root}/cv1",
         r"nope/config\.json: not found", guards=("{root}/cv1",)),
    Case("cv-src-no-config", "convert hf-to-jaxbert {in}/emptydir {root}/cv2",
         r"emptydir/config\.json: not found", guards=("{root}/cv2",)),
    Case("cv-bad-json", "convert hf-to-jaxbert {in}/hf_badjson {root}/cv3",
         r"hf_badjson/config\.json: not valid JSON", guards=("{root}/cv3",)),
    Case("cv-missing-key", "convert hf-to-jaxbert {in}/hf_nokey {root}/cv4",
         r"hf_nokey/config\.json: missing required key 'hidden_size'", guards=("{root}/cv4",)),
    Case("cv-corrupt-safetensors", "convert hf-to-jaxbert {in}/hf_corrupt {root}/cv5",
         r"hf_corrupt/model\.safetensors: cannot read", guards=("{root}/cv5",)),
    Case("cv-no-weights", "convert hf-to-jaxbert {in}/hf_noweights {root}/cv6",
         r"hf_noweights/model\.safetensors: not found", guards=("{root}/cv6",)),
    Case("cv-hf-dst-exists", "convert hf-to-jaxbert {hf} {in}/afile", r"afile",
         guards=("{in}/afile", "{hf}")),
    Case("cv-dst-exists", "convert jaxbert-to-hf {run} {hf}", r"hf: already exists",
         guards=("{hf}", "{run}")),
    Case("cv-dst-is-file", "convert jaxbert-to-hf {run} {in}/afile --overwrite",
         r"afile: exists and is not a directory", guards=("{in}/afile",)),
    Case("cv-jb-missing-src", "convert jaxbert-to-hf {root}/nope {root}/cv7", r"nope",
         guards=("{root}/cv7",)),
    Case("cv-jb-src-not-checkpoint", "convert jaxbert-to-hf {in}/emptydir {root}/cv8",
         r"emptydir", guards=("{root}/cv8",)),
    Case("cv-jb-truncated", "convert jaxbert-to-hf {in}/run_trunc {root}/cv9", r"run_trunc",
         guards=("{root}/cv9",)),
    Case("cv-jb-without-run-config-ok", "convert jaxbert-to-hf {in}/run_noconfig "
         "{root}/cv10", None, code=0, stdout=r"converted \S*run_noconfig → \S*cv10",
         creates=("{root}/cv10/model.safetensors",)),
    Case("cv-no-direction", "convert", r"required: DIRECTION"),
]  # fmt: skip

EMBED = "embed --init {run}"
EMBED_CASES = [
    Case("embed-no-init-flag", "embed --text hi", r"--init is required"),
    Case("embed-missing-init", "embed --init {root}/nope --text hi", r"--init \S*nope: not found"),
    Case("embed-init-not-checkpoint", "embed --init {in}/emptydir --text hi", r"emptydir"),
    Case("embed-init-truncated", "embed --init {in}/run_trunc --text hi", r"run_trunc"),
    Case("embed-init-hf-corrupt", "embed --init {in}/hf_corrupt --text hi",
         r"hf_corrupt/model\.safetensors"),
    Case("embed-init-hf-no-tokenizer", "embed --init {hf} --text hi", r"tokenizer"),
    Case("embed-missing-file", f"{EMBED} --file {{root}}/nope.txt", r"--file \S*nope\.txt"),
    Case("embed-file-bad-bytes", f"{EMBED} --file {{in}}/texts_bad.txt",
         r"texts_bad\.txt:3: undecodable"),
    Case("embed-file-is-dir", f"{EMBED} --file {{in}}/emptydir", r"--file \S*emptydir is a directory"),
    Case("embed-output-is-dir", f"{EMBED} --text hi --output {{root}}/emb",
         r"--output \S*emb\b.*directory", guards=("{root}/emb", "{root}/emb.npz")),
    Case("embed-output-under-file", f"{EMBED} --text hi --output {{in}}/afile/v.npz",
         r"afile", guards=("{in}/afile",)),
    Case("embed-layer-99", f"{EMBED} --text hi --layer 99", r"--layer 99 is out of range"),
    Case("embed-layer-word", f"{EMBED} --text hi --layer top", r"--layer must be an integer"),
    Case("embed-no-text", EMBED, r"no text to embed"),
    Case("embed-word-absent", f"{EMBED} --text hi --word zebra",
         r"'zebra' does not occur in text 1"),
    Case("embed-other-vocab", f"{EMBED} --text hi --tokenizer {{tok2}}/tokenizer.model",
         r"--tokenizer"),
    Case("embed-output-appends-npz", f"{EMBED} --text hi --text ho --output {{root}}/emb/vecs",
         None, code=0, stdout=r"vectors saved to \S*/emb/vecs\.npz$",
         creates=("{root}/emb/vecs.npz",)),
]  # fmt: skip

# Issue 30 (one run core; validate before writing; faults lose nothing): the init_from,
# output and checkpoint paths, the one resume policy, encodings, NER columns, a cut-short
# .json.gz, TFDS names. (Disk-full and signal cases need a fresh process each: they are
# tests/train/test_disk_full.py, test_preemption.py, test_loop.py and finetune/test_resume.)
SQUAD_CFG = REPO / "configs" / "finetune" / "squad.py"
SQUAD_SMALL = ("--config.squad.file=sample-v1.1.json --config.squad.doc_stride=16 "
               "--config.squad.max_query_length=8")  # fmt: skip


def ft_out(case_id: str, out: str, error: str) -> Case:
    """A fine-tuning case whose output_dir is `out` (a bad one)."""
    argv = (f"finetune --config {GLUE_CFG}:sst2 --config.init={{run}} "
            f"--config.data_dir={FT_FIXTURE} --config.output_dir={out} --config.batch_size=4 "
            "--config.num_epochs=1 --config.max_seq_length=32")  # fmt: skip
    return Case(case_id, argv, error, guards=("{in}/afile", "{run}"))


def pt_extra(case_id: str, error: str, guards: tuple[str, ...], **extra) -> Case:
    """`pt` that also guards `guards` (e.g. a missing init_from path stays missing)."""
    case = pt(case_id, error, **extra)
    return dataclasses.replace(case, guards=case.guards + guards)


ISSUE30_CASES = [
    pt_extra("pt-init-from-missing", r"config\.train\.init_from=\S*nope: not found",
             ("{root}/nope",), train__init_from="{root}/nope"),
    pt_extra("pt-init-from-empty-dir", r"config\.train\.init_from: no checkpoint in \S*emptydir",
             ("{in}/emptydir",), train__init_from="{in}/emptydir"),
    pt_extra("pt-init-from-file", r"init_from=\S*afile is a file, not a run", ("{in}/afile",),
             train__init_from="{in}/afile"),
    pt_extra("pt-init-from-truncated", r"init_from: no readable checkpoint in \S*run_trunc",
             ("{in}/run_trunc",), train__init_from="{in}/run_trunc"),
    pt_extra("pt-ckpt-dir-is-file", r"config\.checkpoint\.directory \S*afile is a file",
             ("{in}/afile",), checkpoint__directory="{in}/afile"),
    Case("pt-output-dir-is-file", pretrain("{in}/afile"),
         r"config\.output_dir \S*afile is a file, not a directory", guards=("{in}/afile",)),
    Case("pt-output-dir-under-file", pretrain("{in}/afile/run"), r"\S*afile is a file",
         guards=("{in}/afile",)),
    Case("pt-output-dir-under-proc", pretrain("/proc/jaxbert-bad/run"), r"/proc/jaxbert-bad"),
    Case("pt-resume-changed-lr", pretrain("{run}", optimizer__learning_rate=0.5),
         r"checkpoints/2 was trained with a different config.*config\.optimizer\.learning_rate:"
         r" \S+ → 0\.5", guards=("{run}",)),
    Case("pt-resume-changed-mask-prob", pretrain("{run}", data__mask_prob=0.1),
         r"config\.data\.mask_prob: 0\.15 → 0\.1", guards=("{run}",)),
    Case("pt-resume-changed-seed", pretrain("{run}", train__seed=7),
         r"config\.train\.seed: 0 → 7", guards=("{run}",)),
    ft_out("ft-output-dir-is-file", "{in}/afile",
           r"config\.output_dir \S*afile is a file, not a directory"),
    ft_out("ft-output-dir-under-file", "{in}/afile/run", r"\S*afile is a file"),
    ft("ft-init-empty-dir", "--config.init={in}/emptydir", r"emptydir"),
    ft("ft-init-is-file", "--config.init={in}/afile", r"afile"),
    ft("ft-log-every-0", "--config.log_every=0", r"config\.log_every"),
    ft("ft-ckpt-every-negative", "--config.checkpoint_every_steps=-1",
       r"config\.checkpoint_every_steps"),
    ft("ft-conll-3-columns", "--config.data_dir={in}/ft_conll3",
       r"eng\.train:\d+: NER tag 'I-NP' .*3 columns, CoNLL-2003 has 4", spec=NER_CFG),
    ft("ft-conll-mixed-columns", "--config.data_dir={in}/ft_conll_cols",
       r"eng\.train:4: 3 columns, but the file's first line has 4", spec=NER_CFG),
    ft("ft-ner-bad-tag-outside-sample", "--config.data_dir={in}/ft_tag_late "
       "--config.max_train_examples=1", r"eng\.train:\d+: NER tag 'B-DATE'", spec=NER_CFG),
    ft("ft-squad-eval-truncated-gz", f"--config.squad.eval_files={{in}}/squad_trunc.json.gz "
       f"{SQUAD_SMALL}", r"squad_trunc\.json\.gz: not a complete gzip file", spec=SQUAD_CFG),
    Case("tok-latin1-mostly", "tokenizer train --corpus {in}/latin1_all.txt --out {tok} "
         "--force --vocab-size 300", r"latin1_all\.txt: 30 of 31 lines are not valid UTF-8",
         guards=TOK_GUARD),
    Case("prep-latin1-mostly", "data prepare --corpus {in}/latin1_all.txt --tokenizer {tok} "
         "--out {prep} --force --workers 0",
         r"latin1_all\.txt: 30 of 31 lines are not valid UTF-8", guards=PREP_GUARD),
    Case("tok-binary-corpus", "tokenizer train --corpus {in}/binary.dat --out {tok} --force "
         "--vocab-size 2000", r"binary\.dat: .*not valid UTF-8.*not text", guards=TOK_GUARD),
    Case("embed-file-empty", "embed --init {run} --file {in}/empty.txt",
         r"--file \S*empty\.txt holds no text"),
    Case("embed-correction-other-width", "embed --init {run} --text hi --correction "
         "{in}/corr256.npz", r"--correction \S*corr256\.npz was fitted on 256-dim vectors"),
    Case("prep-tfds-missing", "data prepare --corpus tfds:no_such_dataset --tokenizer {tok} "
         "--out {prep} --force --workers 0 --tfds-data-dir {in}/emptydir",
         r"tfds:no_such_dataset", guards=PREP_GUARD),
]  # fmt: skip

CASES = (DATA_CASES + PRETRAIN_CASES + PLAN_CASES + FINETUNE_CASES + CONVERT_CASES
         + EMBED_CASES + ISSUE30_CASES)  # fmt: skip


# --- bad inputs on disk -----------------------------------------------------------------

GOOD_LINES = "The first line is fine.\nSo is the second one.\n"


def write_corpora(d: Path) -> None:
    """Corpora that are empty, blank, cut short, or not UTF-8 (line 3)."""
    (d / "empty.txt").write_text("")
    (d / "blank.txt").write_text("\n\n   \n\n")
    (d / "trunc.gz").write_bytes(WIKI.read_bytes()[: WIKI.stat().st_size // 2])
    (d / "latin1.txt").write_bytes(GOOD_LINES.encode() + "Café au lait.\n".encode("latin-1"))
    (d / "afile").write_text("a file, not a directory\n")
    (d / "plain.gz").write_text(GOOD_LINES)  # named .gz, not gzip
    (d / "foreign").mkdir()
    (d / "foreign" / "notes.txt").write_text("someone else's file\n")
    (d / "badprep").mkdir()
    (d / "badprep" / "manifest.json").write_text('{"shards": [')
    (d / "emptydir").mkdir()
    (d / "ro").mkdir()
    (d / "ro").chmod(0o555)
    (d / "texts_bad.txt").write_bytes(GOOD_LINES.encode() + b"caf\xe9 \xff\n")
    latin1 = "".join(f"Café numéro {i}.\n" for i in range(30)) + "One line in ASCII.\n"
    (d / "latin1_all.txt").write_bytes(latin1.encode("latin-1"))
    import numpy as np

    np.savez(d / "corr256.npz", correction_kind=np.asarray("center"),
             correction_mean=np.zeros(256, np.float32),
             correction_matrix=np.eye(256, dtype=np.float32))  # fmt: skip
    (d / "binary.dat").write_bytes(bytes(range(256)) * 40 + b"\n".join([b"\xff\xfe\x00"] * 50))


def write_config_files(d: Path) -> None:
    """Python config files with a syntax error (line 3), a NameError on import (line 2) or
    inside get_config (line 5), and none at all."""
    (d / "syntax.py").write_text("from jaxbert.train.config import pretrain_defaults\n\n"
                                 "def get_config(:\n    return pretrain_defaults()\n")  # fmt: skip
    (d / "raises.py").write_text("import os\nPATH = undefined_name\n")
    (d / "raises_late.py").write_text(
        "from jaxbert.train.config import pretrain_defaults\n\n\n"
        "def get_config():\n    return pretrain_defaults(undefined_name)\n"
    )
    (d / "noget.py").write_text("x = 1\n")


def write_hf_dirs(d: Path) -> None:
    """Hugging Face directories: corrupt weights, bad JSON, a missing key, no weights."""
    config = json.loads((HF_FIXTURE / "config.json").read_text())
    weights = (HF_FIXTURE / "model.safetensors").read_bytes()
    variants = {
        "hf_corrupt": (json.dumps(config), weights[:200]),
        "hf_badjson": ("{not json", weights),
        "hf_nokey": (json.dumps({k: v for k, v in config.items() if k != "hidden_size"}), weights),
        "hf_noweights": (json.dumps(config), None),
    }
    for name, (text, blob) in variants.items():
        (d / name).mkdir()
        (d / name / "config.json").write_text(text)
        if blob is not None:
            (d / name / "model.safetensors").write_bytes(blob)


def write_task_data(d: Path) -> None:
    """Fine-tuning data dirs, each with one fault on a known line of the training file."""
    glue = FT_FIXTURE / "glue" / "SST-2"
    for name, line in (("ft_bytes", b"caf\xe9 \xff\t1\n"), ("ft_row", b"one\ttwo\t1\n"),
                       ("ft_label", b"a sentence\tmaybe\n")):  # fmt: skip
        target = d / name / "glue" / "SST-2"
        shutil.copytree(glue, target)
        rows = (glue / "train.tsv").read_bytes().splitlines(keepends=True)
        (target / "train.tsv").write_bytes(b"".join(rows[:2] + [line] + rows[3:]))
    conll = (FT_FIXTURE / "conll2003" / "eng.sample").read_text().splitlines(keepends=True)
    three = [" ".join(x.split()[:3]) + "\n" if x.strip() else x for x in conll]
    for name, train in (("ft_conll", conll[:3] + ["praises VBZ\n"] + conll[4:]),
                        ("ft_tag", conll[:3] + ["praises VBZ I-VP X-ORG\n"] + conll[4:]),
                        ("ft_conll3", three),
                        ("ft_conll_cols", conll[:3] + ["praises VBZ I-VP\n"] + conll[4:]),
                        ("ft_tag_late", conll + ["\nlate NN I-NP B-DATE\n"])):  # fmt: skip
        target = d / name / "conll2003"
        target.mkdir(parents=True)
        (target / "eng.train").write_text("".join(train))
        for split in ("eng.testa", "eng.testb"):
            (target / split).write_text("".join(conll))
    squad = gzip.compress((FT_FIXTURE / "squad" / "sample-v1.1.json").read_bytes())
    (d / "squad_trunc.json.gz").write_bytes(squad[: len(squad) // 2])


def make_inputs(root: Path) -> None:
    """Everything the cases read that needs no jaxbert command (those are SETUP/FAULTS)."""
    d = root / "in"
    d.mkdir()
    write_corpora(d)
    write_config_files(d)
    write_hf_dirs(d)
    write_task_data(d)
    shutil.copytree(HF_FIXTURE, root / "hf")
    (root / "emb").mkdir()
    (root / "pt").mkdir()
    (root / "ft").mkdir()


# --- running them -----------------------------------------------------------------------


def fill(text: str, root: Path) -> str:
    """Placeholders → paths under this run's tmp root (the table is built at import)."""
    names = {"root": root, "in": root / "in", "tok": root / "tok", "tok2": root / "tok2",
             "prep": root / "prep", "run": root / "run", "hf": root / "hf"}  # fmt: skip
    return text.format(**{k: str(v) for k, v in names.items()})


def spec(root: Path) -> dict:
    """The driver's input: setup command lines, guarded paths, and every case's argv."""
    cases = [
        {"id": c.id, "argv": shlex.split(fill(c.argv, root)),
         "guards": [fill(g, root) for g in GOOD + c.guards],
         "creates": [fill(g, root) for g in c.creates]}
        for c in CASES
        if not (c.permissions and IS_ROOT)
    ]  # fmt: skip
    baseline = sorted({g for c in cases for g in c["guards"]})
    faults = [[fill(str(x), root) for x in f] for f in FAULTS]
    return {"setup": [shlex.split(fill(s, root)) for s in SETUP], "faults": faults,
            "baseline": baseline, "cases": cases}  # fmt: skip


def driver_env() -> dict[str, str]:
    """One host CPU device (not the test session's 8 virtual ones: collectives across 8
    threads are slow on a busy 2-core machine) and the repository importable."""
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(REPO / "src"))
    env["XLA_FLAGS"] = env.get("XLA_FLAGS", "").replace(
        "--xla_force_host_platform_device_count=8", ""
    )
    return env


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict:
    """Runs the driver once: {"setup": [...], "baseline": {...}, case id: record}."""
    root = tmp_path_factory.mktemp("bad_inputs")
    make_inputs(root)
    (root / "spec.json").write_text(json.dumps(spec(root)))
    out = root / "results.jsonl"
    proc = subprocess.run(
        [sys.executable, str(DRIVER), str(root / "spec.json"), str(out)],
        env=driver_env(), cwd=root, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    records = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    found = {"setup": [r for r in records if "setup" in r], "driver": proc}
    for r in records:
        if "baseline" in r:
            found["baseline"] = r["baseline"]
        elif "id" in r:
            found[r["id"]] = r
    return found


def test_good_outputs_build(results):
    """The setup commands succeed, so every guarded checksum means something."""
    setup = results["setup"]
    bad = [r for r in setup if r["code"] != 0]
    assert len(setup) == len(SETUP) and not bad, (bad or setup[-1:], results["driver"].stderr)


def check(case: Case, record: dict, baseline: dict) -> None:
    """The property of the module docstring, for one case's record."""
    output = record["stdout"] + record["stderr"]
    shown = (
        f"exit {record['code']}\n--- stdout\n{record['stdout'][-2000:]}\n--- stderr\n"
        + record["stderr"][-4000:]
    )
    assert "Traceback" not in output, shown
    assert record["code"] == case.code, shown
    errors = [line for line in record["stderr"].splitlines() if ERROR_LINE.match(line)]
    if case.error is None:
        assert not errors, shown
        assert re.search(case.stdout, record["stdout"], re.M), shown
        assert "absent" not in record["created"].values(), (record["created"], shown)
    else:
        assert len(errors) == 1, shown
        assert re.search(case.error, errors[0]), shown
        after = record["stderr"].split(errors[0], 1)[1].strip()
        assert case.multiline or not after, f"lines after the error line\n{shown}"
    changed = [g for g, s in record["checksums"].items() if s != baseline[g]]
    assert not changed, f"changed or created: {changed}\n{shown}"


ROOT_SKIP = pytest.mark.skip(
    reason="root ignores file modes (see the /proc and file-as-parent cases)"
)


def marks(case: Case) -> list:
    """Strict xfail for a reported bug elsewhere, so its fix is noticed; skip where root
    makes a permission case meaningless."""
    if case.permissions and IS_ROOT:
        return [ROOT_SKIP]
    return [pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=marks(c)) for c in CASES])
def test_bad_input(case, results):
    """One bad input or fault: its documented exit, one error line naming the culprit, no
    traceback, good outputs unchanged."""
    if "baseline" not in results:
        pytest.fail(f"the good outputs did not build: {results['setup'][-1:]}")
    if case.id not in results:
        pytest.fail(f"the driver died before this case:\n{results['driver'].stderr[-4000:]}")
    check(case, results[case.id], results["baseline"])


def test_no_progress_bar_updates_in_captured_output(results):
    """Output captured to files (a log, not a terminal) holds no \\r progress-bar updates:
    one line per message, greppable."""
    records = [r for r in results.values() if isinstance(r, dict) and "stderr" in r]
    records += results["setup"]
    assert records and not [r.get("id", r.get("setup")) for r in records if "\r" in r["stderr"]]


def test_a_background_job_still_stops_on_ctrl_c(monkeypatch):
    """`cmd &` in a script starts with SIGINT ignored; the CLI puts Python's handler back,
    so `kill -INT` stops a background `data prepare` like Ctrl-C in the foreground."""
    import signal

    from jaxbert import cli

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        assert cli.main(["params", "tiny", "--vocab-size", "0"]) == 2
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)


def test_the_table_is_large_and_unique():
    """The issue asks for at least 60 cases; ids name results, so they must be unique."""
    assert len(CASES) >= 60
    assert len({c.id for c in CASES}) == len(CASES)
