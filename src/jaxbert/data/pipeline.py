"""The pretraining input pipeline: prepared shards → fixed-shape masked numpy batches.

One Grain `MapDataset` indexed by *global batch number* g: batch g belongs to epoch
``g // batches_per_epoch``; its rows are instances of that epoch (created from this
process's documents with `instances.create_instances`, shuffled with (seed, epoch,
process)), assembled and masked with keys (seed, process, epoch, example index). Every
batch is thus a pure function of (config, seed, process, g), which makes state trivial
(`{"next_batch": g}`), restores exact — whatever the worker count — and lets Grain's
multiprocessing prefetch compute batches out of order.

`batches_per_epoch` is fixed from epoch 0's instance count (pairings change the count a
little between epochs; a later epoch with more instances drops a random few, one with
fewer wraps around), so epochs never need to be enumerated to find where batch g lives.

Splits: the last `eval_fraction` of the documents (at least one, in corpus order) are
held out; ``split="eval"`` reads only those, ``"train"`` the rest. Documents are dealt
round-robin to processes (``docs[process_index::process_count]``), or with
``data.host_documents=contiguous`` as one contiguous block each (balanced by tokens), so that a host opens only
the shards holding its block (a corpus on a bucket: docs/object-storage.md); random-next
segments come from any document of the split.

Grain imports jax when jax is installed (grain/_src/core/profiler.py), so it is imported
lazily here: importing this module stays jax-free; this code never uses jax itself.
"""

from __future__ import annotations

from typing import Any

import ml_collections
import numpy as np

from jaxbert.data import instances as instances_lib
from jaxbert.data import masking as masking_lib
from jaxbert.data import mixture as mixture_lib
from jaxbert.data import packing as packing_lib
from jaxbert.data import rng as rng_lib
from jaxbert.data.store import PreparedCorpus
from jaxbert.data.tokenizer import load_tokenizer
from jaxbert.errors import UserError

BATCH_KEYS = (
    "input_ids",
    "input_mask",
    "segment_ids",
    "masked_positions",
    "masked_ids",
    "masked_weights",
    "next_sentence_label",
)
SPLITS = ("train", "eval")
_NUM_BATCHES = 2**62  # "forever": Grain ranges are lazy


def default_data_config() -> ml_collections.ConfigDict:
    """Defaults for `config.data` (BERT phase-1: sequence length 128)."""
    return ml_collections.ConfigDict(
        {
            "prepared_dir": "",
            # A mixture instead of one corpus: "NAME=DIR[:WEIGHT],…" (data/mixture.py),
            # drawn with q_i ∝ p_i^sampling_alpha from token shares p_i (or ∝ the weights).
            "corpora": "",
            "sampling_alpha": 1.0,
            "max_seq_length": 128,
            "max_predictions_per_seq": 20,  # 0 = derived from mask_prob × max_seq_length
            "mask_prob": 0.15,
            "objective": "mlm_nsp",  # mlm_nsp (google-bert) | mlm (no NSP head or loss)
            "packing": "pairs",  # pairs | full_sentences | doc_sentences (see packing.py)
            # The held-out set every run reports, whatever its training masking or packing:
            # so runs of different recipes compare on one number.
            "eval_packing": "doc_sentences",
            "eval_mask_prob": 0.15,
            "masking": "token",  # token | whole_word | span
            "random_token": "unigram",  # unigram | uniform
            "short_seq_prob": 0.1,
            "num_workers": 0,  # Grain worker processes; 0 = in-process
            "eval_fraction": 0.01,  # share of documents held out for split="eval"
            # round_robin | contiguous: one block of documents per process, so each opens
            # only the shards of its block (prepared data read from a bucket by every host)
            "host_documents": "round_robin",
            "prefetch": 2,  # batches buffered per worker when num_workers > 0
        }
    )


OBJECTIVES = ("mlm_nsp", "mlm")
HOST_DOCUMENTS = ("round_robin", "contiguous")


def host_documents(
    docs: np.ndarray, mode: str, process_index: int, process_count: int, corpus=None
) -> np.ndarray:
    """This process's share of a split's documents: every process_count-th one, or one
    contiguous block holding about 1/process_count of the split's tokens. Its edges are
    document starts found in the shards the block reads anyway; the only other shard
    index read is the one where the training split ends and the held-out one begins."""
    if mode != "contiguous":
        return docs[process_index::process_count]
    lo, hi = int(docs[0]), int(docs[-1]) + 1  # a split is a contiguous range of documents

    def start(doc: int) -> int:  # the first token of `doc` (the end of the corpus past it)
        if doc in (0, corpus.num_documents):
            return 0 if doc == 0 else corpus.total_tokens
        return int(corpus.doc_token_spans([doc])[0][0])

    t_lo, t_hi = start(lo), start(hi)
    a, b = (
        corpus.token_boundary_doc(t_lo + (t_hi - t_lo) * i // process_count)
        for i in (process_index, process_index + 1)
    )
    return np.arange(min(max(lo, a), hi), min(max(lo, b), hi), dtype=docs.dtype)


def derived_max_predictions(mask_prob: float, max_seq_length: int) -> int:
    """The most predictions masking can ask for: mask_prob of a full packed window."""
    return max(1, round(mask_prob * (max_seq_length - 2)))


def validate_data_config(cfg: Any) -> dict:
    """Reads and checks the data config (errors name `config.data.KEY`); returns it with
    `max_predictions_per_seq=0` resolved."""
    defaults = default_data_config()
    read = cfg.get if hasattr(cfg, "get") else lambda k, d: getattr(cfg, k, d)
    c = {k: read(k, defaults[k]) for k in defaults}
    modes = packing_lib.PACKING_MODES
    checks = {
        "masking": (c["masking"] in masking_lib.MASKING_MODES, f"one of {masking_lib.MASKING_MODES}"),
        "random_token": (c["random_token"] in masking_lib.RANDOM_TOKEN_MODES, "unigram or uniform"),
        "objective": (c["objective"] in OBJECTIVES, f"one of {OBJECTIVES}"),
        "packing": (c["packing"] in modes, f"one of {modes}"),
        "eval_packing": (c["eval_packing"] in modes, f"one of {modes}"),
        "mask_prob": (0 < c["mask_prob"] <= 0.8, "in (0, 0.8]"),
        "eval_mask_prob": (0 < c["eval_mask_prob"] <= 0.8, "in (0, 0.8]"),
        "short_seq_prob": (0 <= c["short_seq_prob"] <= 1, "in [0, 1]"),
        "max_seq_length": (8 <= c["max_seq_length"] <= 512 * 16, "in [8, 8192]"),
        "max_predictions_per_seq": (
            0 <= c["max_predictions_per_seq"] <= c["max_seq_length"],
            "in [0, max_seq_length] (0 = derived from mask_prob)",
        ),
        "num_workers": (c["num_workers"] >= 0, ">= 0"),
        "eval_fraction": (0 <= c["eval_fraction"] < 1, "in [0, 1)"),
        "sampling_alpha": (c["sampling_alpha"] > 0, "> 0 (1.0 = proportional to tokens)"),
        "host_documents": (c["host_documents"] in HOST_DOCUMENTS, f"one of {HOST_DOCUMENTS}"),
    }  # fmt: skip
    for key, (ok, want) in checks.items():
        if not ok:
            raise UserError(f"config.data.{key}={c[key]!r} must be {want}")
    if c["objective"] == "mlm_nsp" and c["packing"] != "pairs":
        raise UserError(
            f"config.data.objective='mlm_nsp' needs config.data.packing='pairs' (NSP labels "
            f"sentence pairs), got {c['packing']!r}; use objective='mlm' for packed text"
        )
    if c["corpora"]:
        specs = mixture_lib.parse_corpora(c["corpora"])
        c["prepared_dir"] = specs[0].directory  # what vocabulary checks read
    needed = derived_max_predictions(c["mask_prob"], c["max_seq_length"])
    if c["max_predictions_per_seq"] == 0:
        c["max_predictions_per_seq"] = needed
    elif c["max_predictions_per_seq"] < needed:
        raise UserError(
            f"config.data.max_predictions_per_seq={c['max_predictions_per_seq']} is too small "
            f"for mask_prob={c['mask_prob']} × max_seq_length={c['max_seq_length']} (needs "
            f">= {needed}; set it to 0 to derive it)"
        )
    return c


def eval_data_config(c: dict) -> dict:
    """The fixed held-out set (`eval_packing`, `eval_mask_prob`, token masking)."""
    out = {**c, "packing": c["eval_packing"], "mask_prob": c["eval_mask_prob"], "masking": "token"}
    out["max_predictions_per_seq"] = derived_max_predictions(out["mask_prob"], c["max_seq_length"])
    return out


def split_documents(num_documents: int, eval_fraction: float, split: str) -> np.ndarray:
    """Document ids of a split: eval is the last `eval_fraction` (>= 1 doc when > 0)."""
    if split not in SPLITS:
        raise UserError(f"split must be one of {SPLITS}, got {split!r}")
    n_eval = max(1, round(num_documents * eval_fraction)) if eval_fraction > 0 else 0
    if n_eval and num_documents - n_eval < 1:
        raise UserError(
            f"the prepared corpus has {num_documents} document(s): too few to hold out "
            "an eval split (set data.eval_fraction=0 to train on all)"
        )
    if split == "eval":
        if not n_eval:
            raise UserError("split='eval' needs data.eval_fraction > 0")
        return np.arange(num_documents - n_eval, num_documents)
    return np.arange(num_documents - n_eval)


class BatchSource:
    """Callable g → batch g. Picklable (the corpus pickles as its path) for Grain workers."""

    def __init__(self, cfg: dict, *, batch_size, seed, process_index, process_count, split, debug):
        self.cfg, self.batch_size, self.seed, self.debug = cfg, batch_size, seed, debug
        self.process_index = process_index
        self.corpus = PreparedCorpus(cfg["prepared_dir"])
        self.split_docs = split_documents(self.corpus.num_documents, cfg["eval_fraction"], split)
        self.local_docs = host_documents(
            self.split_docs, cfg["host_documents"], process_index, process_count, self.corpus
        )
        if len(self.local_docs) == 0:
            raise UserError(
                f"{cfg['prepared_dir']}: split {split!r} has {len(self.split_docs)} document(s), "
                f"none for process {process_index} of {process_count}"
            )
        self.corpus.open_documents(self.local_docs)  # a damaged shard fails here, not later
        self._tables: dict[int, np.ndarray] = {}
        self._packs: dict[int, packing_lib.PackedEpoch] = {}
        self.batches_per_epoch = max(1, len(self.epoch_table(0)) // batch_size)
        self._load_vocab_tables()

    def _load_vocab_tables(self) -> None:
        tok = load_tokenizer(self.corpus.tokenizer_path)
        self.cls_id, self.sep_id, self.mask_id = tok.cls_id, tok.sep_id, tok.mask_id
        self.special_table, self.word_start_table = tok.special_table, tok.word_start_table
        self.sampler = masking_lib.ReplacementSampler.create(
            self.cfg["random_token"], self.corpus.unigram_counts, tok.special_table
        )

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_tables"], state["_packs"] = {}, {}
        for key in ("cls_id", "sep_id", "mask_id", "special_table", "word_start_table"):
            state.pop(key)
        state.pop("sampler")
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._load_vocab_tables()

    @property
    def packed(self) -> bool:
        return self.cfg["packing"] != "pairs"

    def epoch_table(self, epoch: int) -> np.ndarray:
        """This process's instances of `epoch`, shuffled (cached, two epochs kept): pair
        rows (`instances.INSTANCE_FIELDS`) or, packed, window indices into `self._packs`."""
        if epoch not in self._tables:
            if self.packed:
                pack = packing_lib.pack_epoch(
                    self.corpus, self.local_docs, mode=self.cfg["packing"],
                    window=self.cfg["max_seq_length"] - 2, seed=self.seed, epoch=epoch,
                    process_index=self.process_index,
                )  # fmt: skip
                self._packs = {k: v for k, v in self._packs.items() if k == epoch - 1}
                self._packs[epoch] = pack
                table = np.arange(pack.num_windows, dtype=np.int64)[:, None]
            else:
                table = self._pair_table(epoch)
            order = np.random.default_rng([self.seed, epoch, self.process_index, 7]).permutation(
                len(table)
            )
            self._tables = {k: v for k, v in self._tables.items() if k == epoch - 1}
            self._tables[epoch] = table[order]
        return self._tables[epoch]

    def _pair_table(self, epoch: int) -> np.ndarray:
        return instances_lib.create_instances(
            self.corpus.doc_sentence_start,
            self.corpus.sentence_lengths,
            self.local_docs,
            self.split_docs,
            max_seq_length=self.cfg["max_seq_length"],
            short_seq_prob=self.cfg["short_seq_prob"],
            seed=self.seed,
            epoch=epoch,
        )

    def _sequences(self, rows: np.ndarray, keys: np.ndarray, epoch: int) -> dict:
        ids = {"max_seq_length": self.cfg["max_seq_length"], "cls_id": self.cls_id}
        ids["sep_id"] = self.sep_id
        if self.packed:  # __call__ built the epoch's stream with its table
            return packing_lib.assemble_packed(self.corpus, self._packs[epoch], rows[:, 0], **ids)
        return instances_lib.assemble_pairs(self.corpus, rows, keys, **ids)

    def __call__(self, g: int) -> dict[str, np.ndarray]:
        epoch, b = divmod(int(g), self.batches_per_epoch)
        return self.examples(epoch, b * self.batch_size + np.arange(self.batch_size))

    def examples(self, epoch: int, example: np.ndarray) -> dict[str, np.ndarray]:
        """The masked examples at positions `example` of `epoch` (a mixture asks for
        scattered positions; a batch for consecutive ones)."""
        table = self.epoch_table(epoch)
        rows = table[example % len(table)]
        keys = rng_lib.derive(self.seed, self.process_index, epoch, example)
        cfg = self.cfg
        seqs = self._sequences(rows, keys, epoch)
        masked = masking_lib.mask_tokens(
            seqs["input_ids"], seqs["input_mask"], keys,
            special_table=self.special_table, word_start_table=self.word_start_table,
            sampler=self.sampler, mask_id=self.mask_id, mode=cfg["masking"],
            mask_prob=cfg["mask_prob"], max_predictions=cfg["max_predictions_per_seq"],
        )  # fmt: skip
        batch = {**seqs, **masked}
        if self.debug:
            return self._debug_fields(batch, seqs, rows, epoch, example)
        return {k: batch[k] for k in BATCH_KEYS}

    def _debug_fields(self, batch, seqs, rows, epoch, example) -> dict:
        """Extra fields for `jaxbert data inspect` and tests: pairs get document-local
        sentence ranges, packed windows their index and first document."""
        out = {k: batch[k] for k in BATCH_KEYS}
        out["original_ids"] = seqs["input_ids"]
        out["epoch"] = np.full(len(rows), epoch)
        out["example_index"] = example
        if self.packed:
            out["window"], out["doc_a"] = rows[:, 0], seqs["first_doc"]
            return out
        first = self.corpus.doc_sentence_start
        out["doc_a"], out["doc_b"] = rows[:, 0], rows[:, 3]
        out["sent_a"] = rows[:, 1:3] - first[rows[:, 0]][:, None]
        out["sent_b"] = rows[:, 4:6] - first[rows[:, 3]][:, None]
        return out


class PretrainIterator:
    """Endless iterator of pretraining batches with `get_state`/`set_state`.

    The state counts the batches handed out; restoring rebuilds the Grain pipeline at that
    batch, so what follows equals an uninterrupted run (prefetched batches are recomputed).
    """

    def __init__(self, source: BatchSource, num_workers: int, prefetch: int, identity: dict):
        self.source, self.num_workers, self.prefetch = source, num_workers, prefetch
        self._identity = identity
        self._next_batch = 0
        self._iter = None

    @property
    def batches_per_epoch(self) -> int:
        return self.source.batches_per_epoch

    def __iter__(self) -> PretrainIterator:
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        if self._iter is None:
            self._iter = iter(self._dataset(self._next_batch))
        batch = next(self._iter)
        self._next_batch += 1
        return batch

    def _dataset(self, start: int):
        import grain  # noqa: PLC0415 - grain imports jax; keep module import jax-free

        ds = grain.MapDataset.range(start, _NUM_BATCHES).map(self.source)
        if self.num_workers == 0:
            return ds.to_iter_dataset(grain.ReadOptions(num_threads=0, prefetch_buffer_size=0))
        it = ds.to_iter_dataset(grain.ReadOptions(num_threads=0, prefetch_buffer_size=0))
        from absl import flags  # noqa: PLC0415 - Grain workers read absl flags

        if not flags.FLAGS.is_parsed():  # not run under absl.app: use flag defaults
            flags.FLAGS.mark_as_parsed()
        options = grain.MultiprocessingOptions(
            num_workers=self.num_workers, per_worker_buffer_size=self.prefetch
        )
        return it.mp_prefetch(options)

    def get_state(self) -> dict:
        return {"next_batch": self._next_batch, **self._identity}

    def set_state(self, state: dict) -> None:
        # A key the saved state lacks predates it and had its default value then.
        mismatched = [k for k, v in self._identity.items() if state.get(k, v) != v]
        if mismatched:
            diffs = ", ".join(f"{k}: saved {state.get(k)!r} vs now {self._identity[k]!r}"
                              for k in mismatched)  # fmt: skip
            raise UserError(f"data iterator state does not match this pipeline ({diffs})")
        self.close()
        self._next_batch = int(state["next_batch"])

    def close(self) -> None:
        """Stops Grain worker processes, if any."""
        if self._iter is not None and hasattr(self._iter, "close"):
            self._iter.close()
        self._iter = None


def make_pretrain_iterator(
    data_cfg: Any,
    *,
    batch_size: int,
    seed: int,
    process_index: int = 0,
    process_count: int = 1,
    split: str = "train",
    debug: bool = False,
    held_out_set: bool = False,
    packing: str | None = None,
) -> PretrainIterator:
    """Batches of `BATCH_KEYS` (per-process `batch_size`), forever; see the module doc.

    `held_out_set=True` reads the fixed eval recipe (`eval_data_config`); `packing`
    overrides the packing mode (the NSP eval of a packed-eval run reads pairs).
    `debug=True` adds original_ids, doc_a/doc_b, sent_a/sent_b (document-local sentence
    ranges [start, end)), epoch and example_index, for inspection.
    """
    if batch_size < 1:
        raise UserError(f"batch_size must be >= 1, got {batch_size}")
    if seed < 0:
        raise UserError(f"seed must be >= 0, got {seed}")
    if not 0 <= process_index < process_count:
        raise UserError(f"process_index {process_index} not in [0, {process_count})")
    cfg = validate_data_config(data_cfg)
    if held_out_set:
        cfg = eval_data_config(cfg)
    if packing is not None:
        cfg["packing"] = packing
    kw = dict(batch_size=batch_size, process_index=process_index, process_count=process_count,
              split=split, debug=debug)  # fmt: skip
    source = (
        mixture_source(cfg, seed, **kw) if cfg["corpora"] else BatchSource(cfg, seed=seed, **kw)
    )
    identity = {"seed": seed, "batch_size": batch_size, "split": split}
    if cfg["corpora"]:
        identity |= {"corpora": cfg["corpora"], "sampling_alpha": cfg["sampling_alpha"]}
    identity |= {"process_index": process_index, "process_count": process_count}
    if cfg["host_documents"] != "round_robin":  # absent from older runs' saved state
        identity |= {"host_documents": cfg["host_documents"]}
    identity |= {k: cfg[k] for k in ("max_seq_length", "max_predictions_per_seq", "masking")}
    identity |= {"packing": cfg["packing"]}
    return PretrainIterator(source, cfg["num_workers"], cfg["prefetch"], identity)


def mixture_source(cfg: dict, seed: int, **kw) -> mixture_lib.MixtureSource:
    """One `BatchSource` per corpus of `data.corpora` (same tokenizer, refused otherwise),
    each with its own seed, mixed with the smoothed shares of their token counts."""
    specs = mixture_lib.parse_corpora(cfg["corpora"])
    _, q = mixture_lib.corpus_shares(specs, cfg["sampling_alpha"])  # checked before any load
    sources = [
        BatchSource({**cfg, "prepared_dir": spec.directory},
                    seed=rng_lib.derive_int(seed, k) % (2**31), **kw)
        for k, spec in enumerate(specs)
    ]  # fmt: skip
    return mixture_lib.MixtureSource(sources, [s.name for s in specs], q, kw["batch_size"], seed)
