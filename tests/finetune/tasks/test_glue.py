"""GLUE task data: readers, pair features, metrics, leaderboard files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from jaxbert.errors import UserError
from jaxbert.finetune.tasks import glue, glue_scoring

GLUE_FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "finetune" / "glue"


# --- task table and readers ---------------------------------------------------------------


def test_task_table_lists_every_glue_task():
    """The table has all GLUE tasks, MNLI with matched and mismatched dev/test splits."""
    assert set(glue.GLUE_TASKS) == {
        "cola",
        "sst2",
        "mrpc",
        "stsb",
        "qqp",
        "mnli",
        "qnli",
        "rte",
        "wnli",
        "ax",
    }
    mnli = glue.get_task("MNLI")
    assert {"dev_matched", "dev_mismatched", "test_matched", "test_mismatched"} <= set(mnli.files)
    assert dict(mnli.submission) == {"test_matched": "MNLI-m.tsv", "test_mismatched": "MNLI-mm.tsv"}
    assert mnli.dev_splits == ["dev_matched", "dev_mismatched"]
    assert glue.get_task("rte").test_splits == ["test"]
    assert glue.get_task("sts-b").is_regression and glue.get_task("STS-B").num_labels == 1
    assert {t.metric for t in glue.GLUE_TASKS.values()} == {"mcc", "accuracy", "f1", "spearman"}


def test_unknown_task_and_split_are_user_errors():
    """A typo in a task or split name is a UserError listing the valid choices."""
    with pytest.raises(UserError, match="sst2"):
        glue.get_task("sst3")
    with pytest.raises(UserError, match="dev_matched"):
        glue.read_tsv_examples("mnli", GLUE_FIXTURE, "dev")


def test_missing_file_is_user_error(tmp_path):
    """A missing TSV names the path and the expected layout."""
    with pytest.raises(UserError, match="train.tsv"):
        glue.read_tsv_examples("rte", tmp_path, "train")


def test_sst2_reader_skips_header_keeps_quotes_and_test_index():
    """SST-2: header skipped, `"` kept literally, test guids are the file's index column."""
    train = glue.read_tsv_examples("sst2", GLUE_FIXTURE, "train")
    assert len(train) == 4
    assert train[0] == glue.Example(
        "train-0", "a warm and quietly funny little picture . ", None, "1"
    )
    assert train[2].text_a == 'the film \'s " big " twist works '
    test = glue.read_tsv_examples("sst2", GLUE_FIXTURE, "test")
    assert [e.guid for e in test] == ["0", "1", "2"]
    assert test[1].text_a == 'a "quoted word and more' and test[1].label is None


def test_reader_accepts_task_folder_as_data_dir():
    """The data dir may be the glue root or the task's own folder; `read_examples` dispatches
    on the source and rejects unknown ones."""
    assert glue.read_examples("sst2", GLUE_FIXTURE, "dev") == (
        glue.read_tsv_examples("sst2", GLUE_FIXTURE, "dev")
    )
    with pytest.raises(UserError, match="tsv"):
        glue.read_examples("sst2", GLUE_FIXTURE, "dev", source="csv")
    assert glue.read_tsv_examples("sst2", GLUE_FIXTURE / "SST-2", "dev") == (
        glue.read_tsv_examples("sst2", GLUE_FIXTURE, "dev")
    )


def test_cola_has_no_header_and_last_line_without_newline():
    """CoLA train/dev rows are all data (no header), including a final line without \\n."""
    train = glue.read_tsv_examples("cola", GLUE_FIXTURE, "train")
    assert [e.label for e in train] == ["1", "0", "1", "0"]
    assert train[0].text_a == "The cat slept on the warm stone."
    dev = glue.read_tsv_examples("cola", GLUE_FIXTURE, "dev")
    assert [e.text_a for e in dev] == ["The kite pulled itself free.", "Pulled the kite."]
    test = glue.read_tsv_examples("cola", GLUE_FIXTURE, "test")
    assert [(e.guid, e.text_a) for e in test][1] == ("1", "Rattled bus the.")


def test_mrpc_bom_header_and_pairs():
    """MRPC: the BOM-prefixed header is skipped, label from column 0, pair from columns 3/4."""
    train = glue.read_tsv_examples("mrpc", GLUE_FIXTURE, "train")
    assert [e.label for e in train] == ["1", "0"]
    assert train[0].text_b.startswith('Calling her " the planner " ,')
    test = glue.read_tsv_examples("mrpc", GLUE_FIXTURE, "test")
    assert test[1] == glue.Example("1", "Sales declined .", "Sales fell sharply .", None)


def test_stsb_scores_are_floats():
    """STS-B labels are float scores and convert to a float32 label array."""
    train = glue.read_tsv_examples("stsb", GLUE_FIXTURE, "train")
    assert [e.label for e in train] == [5.0, 0.5]
    assert train[1].text_b == "A woman is sleeping."
    test = glue.read_tsv_examples("stsb", GLUE_FIXTURE, "test")
    assert test[0].text_a == "A girl is combing her hair." and test[0].label is None


def test_mnli_matched_splits_use_gold_label_column():
    """MNLI dev_matched takes gold_label (the last of 16 columns); test_matched has none."""
    dev = glue.read_tsv_examples("mnli", GLUE_FIXTURE, "dev_matched")
    assert [e.label for e in dev] == ["neutral", "entailment", "contradiction"]
    assert dev[1].text_a == "yeah i see" and dev[1].text_b == "I see."
    test = glue.read_tsv_examples("mnli", GLUE_FIXTURE, "test_matched")
    assert test == [glue.Example("0", "Hello there.", "Hi.", None)]


def test_malformed_line_names_file_and_line(tmp_path):
    """A row with the wrong number of fields raises a UserError naming file:line."""
    task_dir = tmp_path / "RTE"
    task_dir.mkdir()
    (task_dir / "dev.tsv").write_text(
        "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n1\ta\tb\n"
    )
    with pytest.raises(UserError, match=r"RTE/dev.tsv:3: malformed"):
        glue.read_tsv_examples("rte", tmp_path, "dev")


def test_unknown_label_names_file_and_line(tmp_path):
    """A label outside the task's label list is a UserError naming file:line."""
    (tmp_path / "dev.tsv").write_text("index\tsentence1\tsentence2\tlabel\n0\ta\tb\tmaybe\n")
    with pytest.raises(UserError, match=r"dev.tsv:2: label 'maybe'"):
        glue.read_tsv_examples("rte", tmp_path, "dev")


def test_tfds_reader_without_tfds_is_user_error():
    """Without tensorflow-datasets installed, the TFDS reader says what to install (the
    package is pinned now, so its absence is simulated)."""
    import sys

    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(sys.modules, "tensorflow_datasets", None)
        with pytest.raises(UserError, match="tensorflow-datasets"):
            glue.read_tfds_examples("sst2", "/nonexistent", "dev")


@pytest.mark.data
def test_real_glue_row_counts(shared_data):
    """The readers give the row counts documented in shared/data/README.md."""
    expected = {
        "sst2": (67_349, 872, 1_821),
        "cola": (8_551, 1_043, 1_063),
        "mrpc": (3_668, 408, 1_725),
        "rte": (2_490, 277, 3_000),
        "stsb": (5_749, 1_500, 1_379),
        "wnli": (635, 71, 146),
        "qnli": (None, 5_463, 5_463),
    }
    root = shared_data / "glue"
    for name, counts in expected.items():
        for split, n in zip(("train", "dev", "test"), counts):
            if n is not None:
                assert len(glue.read_tsv_examples(name, root, split)) == n, (name, split)
    assert len(glue.read_tsv_examples("ax", root, "test")) == 1_104


# --- features -----------------------------------------------------------------------------


def test_convert_pair_layout(tokenizer):
    """[CLS] A [SEP] B [SEP], segment ids 0 then 1, mask over real tokens, pad id after."""
    a, b = tokenizer.encode("hello world"), tokenizer.encode("bye")
    f = glue.convert_pair(tokenizer, "hello world", "bye", 8)
    cls, sep, pad = tokenizer.cls_id, tokenizer.sep_id, tokenizer.pad_id
    assert f["input_ids"].tolist() == [cls, *a, sep, *b, sep, pad, pad]
    assert f["segment_ids"].tolist() == [0, 0, 0, 0, 1, 1, 0, 0]
    assert f["input_mask"].tolist() == [1, 1, 1, 1, 1, 1, 0, 0]
    assert all(v.dtype == np.int32 and v.shape == (8,) for v in f.values())


def test_convert_single_sentence_truncates_to_fit(tokenizer):
    """A single sentence is [CLS] A [SEP] with A cut to max_seq_length - 2."""
    f = glue.convert_pair(tokenizer, "a b c d e f", None, 5)
    ids = tokenizer.encode("a b c")
    assert f["input_ids"].tolist() == [tokenizer.cls_id, *ids, tokenizer.sep_id]
    assert f["segment_ids"].tolist() == [0] * 5


def test_truncate_pair_pops_from_longer_side():
    """Truncation drops the last token of the longer sequence (B on ties), like google-bert."""
    a, b = [1, 2, 3, 4, 5], [6, 7]
    glue.truncate_pair(a, b, 5)
    assert (a, b) == ([1, 2, 3], [6, 7])
    a, b = [1, 2, 3], [4, 5, 6]
    glue.truncate_pair(a, b, 4)
    assert (a, b) == ([1, 2], [4, 5])


def test_too_short_max_seq_length_is_user_error(tokenizer):
    """A pair cannot fit in fewer than 4 positions."""
    with pytest.raises(UserError, match="max_seq_length"):
        glue.convert_pair(tokenizer, "a", "b", 3)


def test_convert_examples_shapes_and_labels(tokenizer):
    """Stacked features are [N, S] int32; labels are class ids (int32) or scores (float32)."""
    dev = glue.read_tsv_examples("mnli", GLUE_FIXTURE, "dev_matched")
    f = glue.convert_examples("mnli", dev, tokenizer, 16)
    assert f["input_ids"].shape == (3, 16) and f["input_ids"].dtype == np.int32
    assert f["label"].tolist() == [2, 1, 0] and f["label"].dtype == np.int32
    sts = glue.convert_examples(
        "stsb", glue.read_tsv_examples("stsb", GLUE_FIXTURE, "train"), tokenizer, 16
    )
    assert sts["label"].dtype == np.float32 and sts["label"].tolist() == [5.0, 0.5]
    empty = glue.convert_examples("sst2", [], tokenizer, 16)
    assert empty["input_ids"].shape == (0, 16) and empty["label"].shape == (0,)


# --- metrics ------------------------------------------------------------------------------

LABELS = np.array([1, 1, 1, 1, 0, 0, 0, 0])
PREDS = np.array([1, 1, 1, 0, 0, 0, 1, 1])  # tp=3 fn=1 tn=2 fp=2


def test_accuracy_and_f1_hand_computed():
    """accuracy = 5/8; F1 = 2·(3/5)(3/4)/(3/5+3/4) = 2/3; no true positives → F1 0."""
    assert glue_scoring.accuracy(PREDS, LABELS) == pytest.approx(5 / 8)
    assert glue_scoring.f1_binary(PREDS, LABELS) == pytest.approx(2 / 3)
    assert glue_scoring.f1_binary(np.zeros(8), LABELS) == 0.0
    assert glue_scoring.accuracy([], []) == 0.0


def test_mcc_hand_computed_and_edge_cases():
    """MCC = (tp·tn − fp·fn)/√(…) = 4/√240; constant predictions → 0, not NaN; ±1 extremes."""
    assert glue_scoring.matthews_corrcoef(PREDS, LABELS) == pytest.approx(4 / np.sqrt(240))
    assert glue_scoring.matthews_corrcoef(np.ones(8), LABELS) == 0.0
    assert glue_scoring.matthews_corrcoef(LABELS, LABELS) == pytest.approx(1.0)
    assert glue_scoring.matthews_corrcoef(1 - LABELS, LABELS) == pytest.approx(-1.0)
    assert glue_scoring.matthews_corrcoef(np.ones(3), np.ones(3)) == 0.0


def test_mcc_multiclass_matches_gorodkin_formula():
    """The multi-class MCC equals the R_K formula from the confusion matrix (3 classes)."""
    t = np.array([0, 0, 1, 1, 2, 2, 2, 0])
    p = np.array([0, 1, 1, 1, 2, 0, 2, 0])
    c = np.zeros((3, 3))
    np.add.at(c, (t, p), 1)
    n, tk, pk = c.sum(), c.sum(1), c.sum(0)
    expected = (np.trace(c) * n - tk @ pk) / np.sqrt((n**2 - pk @ pk) * (n**2 - tk @ tk))
    assert glue_scoring.matthews_corrcoef(p, t) == pytest.approx(expected)


def test_pearson_spearman_hand_computed_and_constant():
    """Pearson([1,2,3],[1,2,4]) = 3/√(2·42/9); Spearman([1,2,3,4],[1,3,2,4]) = 0.8;
    a constant side gives 0, not NaN."""
    assert glue_scoring.pearson([1, 2, 3], [1, 2, 4]) == pytest.approx(3 / np.sqrt(2 * 42 / 9))
    assert glue_scoring.spearman([1, 2, 3], [1, 2, 4]) == pytest.approx(1.0)
    assert glue_scoring.spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    assert glue_scoring.pearson([2, 2, 2], [1, 2, 3]) == 0.0
    assert glue_scoring.spearman([2, 2, 2], [1, 2, 3]) == 0.0
    assert glue_scoring.pearson([1.0], [2.0]) == 0.0


def test_spearman_with_ties_matches_scipy():
    """Ties get average ranks, as scipy.stats.spearmanr."""
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 5, 50).astype(float), rng.normal(size=50)
    assert glue_scoring.spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic)
    assert glue_scoring.pearson(x, y) == pytest.approx(stats.pearsonr(x, y).statistic)


def test_glue_metrics_per_task():
    """Each task reports its official metrics, including its headline `task.metric`."""
    assert set(glue_scoring.glue_metrics("cola", PREDS, LABELS)) == {"accuracy", "mcc"}
    assert set(glue_scoring.glue_metrics("mrpc", PREDS, LABELS)) == {"accuracy", "f1"}
    assert set(glue_scoring.glue_metrics("sst2", PREDS, LABELS)) == {"accuracy"}
    sts = glue_scoring.glue_metrics("stsb", [1.0, 2.0, 3.0], [1.0, 2.0, 4.0])
    assert set(sts) == {"pearson", "spearman", "corr"} and sts["spearman"] == pytest.approx(1)
    for task in glue.GLUE_TASKS.values():
        preds = [1.0, 2.0, 3.0] if task.is_regression else [0, 1, 0]
        assert task.metric in glue_scoring.glue_metrics(task, preds, preds)


# --- leaderboard files --------------------------------------------------------------------


def test_write_predictions_leaderboard_format(tmp_path):
    """Files are named as GLUE expects, with `index<TAB>prediction` and label strings."""
    path = glue_scoring.write_glue_predictions(
        "rte", "test", ["0", "1"], np.array([1, 0]), tmp_path
    )
    assert path.name == "RTE.tsv"
    assert path.read_text() == "index\tprediction\n0\tnot_entailment\n1\tentailment\n"
    path = glue_scoring.write_glue_predictions("sst2", "test", ["0", "1"], [0, 1], tmp_path)
    assert path.name == "SST-2.tsv" and path.read_text().splitlines()[1:] == ["0\t0", "1\t1"]
    path = glue_scoring.write_glue_predictions("mnli", "test_mismatched", ["7"], [0], tmp_path)
    assert path.name == "MNLI-mm.tsv" and path.read_text().splitlines()[1] == "7\tcontradiction"
    path = glue_scoring.write_glue_predictions("stsb", "test", ["0"], [3.14159], tmp_path / "sub")
    assert path.read_text() == "index\tprediction\n0\t3.142\n"


def test_write_predictions_rejects_bad_split_and_lengths(tmp_path):
    """No leaderboard file for dev; guid and prediction counts must agree."""
    with pytest.raises(UserError, match="test_matched"):
        glue_scoring.write_glue_predictions("mnli", "test", ["0"], [0], tmp_path)
    with pytest.raises(ValueError):
        glue_scoring.write_glue_predictions("cola", "test", ["0", "1"], [0], tmp_path)


def test_tfds_reader_maps_splits_keys_and_label_names(monkeypatch):
    """The TFDS GLUE reader asks for TFDS's split names offline, reads each task's text
    keys, maps label ids through TFDS's class names (its MNLI order differs from ours),
    keeps STS-B scores as floats and gives test examples no label."""
    import sys

    from tests.fake_tfds import make_module

    fake = make_module(
        {
            ("glue/mnli", "validation_mismatched"): [
                {"premise": "A man sleeps.", "hypothesis": "A man is awake.", "label": 2, "idx": 7}
            ],
            ("glue/stsb", "train"): [
                {"sentence1": "A cat.", "sentence2": "A kitten.", "label": 4.25, "idx": 0}
            ],
            ("glue/sst2", "test"): [{"sentence": "Fine.", "label": -1, "idx": 3}],
        },
        {"glue/mnli": ["entailment", "neutral", "contradiction"]},
    )
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", fake)
    (mnli,) = glue.read_tfds_examples("mnli", "/tfds", "dev_mismatched")
    assert (mnli.text_a, mnli.text_b, mnli.label) == (
        "A man sleeps.",
        "A man is awake.",
        "contradiction",
    )
    assert mnli.guid == "dev_mismatched-7"
    (sts,) = glue.read_tfds_examples("stsb", "/tfds", "train")
    assert sts.label == 4.25 and sts.text_b == "A kitten."
    (test,) = glue.read_tfds_examples("sst2", "/tfds", "test")
    assert (test.guid, test.text_a, test.text_b, test.label) == ("3", "Fine.", None, None)
    assert [c["split"] for c in fake.calls] == ["validation_mismatched", "train", "test"]
    assert all(c["download"] is False for c in fake.calls)
    with pytest.raises(UserError, match="glue/rte"):
        glue.read_tfds_examples("rte", "/tfds", "dev")


def test_undecodable_bytes_and_overlong_fields_name_file_and_line(tmp_path):
    """Bytes that are not UTF-8, a field over csv's size limit, and a header too narrow for
    the task's columns are UserErrors naming file:line, not tracebacks."""
    path = tmp_path / "dev.tsv"
    header = b"index\tsentence1\tsentence2\tlabel\n"
    path.write_bytes(header + b"0\ta\tb\tentailment\n1\tcaf\xe9\tb\tentailment\n")
    with pytest.raises(UserError, match=r"dev.tsv:3: not valid UTF-8"):
        glue.read_tsv_examples("rte", tmp_path, "dev")
    path.write_bytes(header + b"0\t" + b"x" * 200_000 + b"\tb\tentailment\n")
    with pytest.raises(UserError, match=r"dev.tsv:2: field larger than field limit"):
        glue.read_tsv_examples("rte", tmp_path, "dev")
    (tmp_path / "test.tsv").write_text("index\n0\n")
    with pytest.raises(UserError, match=r"test.tsv:2: 1 fields, too few"):
        glue.read_tsv_examples("sst2", tmp_path, "test")


def test_tfds_glue_stored_as_array_record_is_read_without_tensorflow(tmp_path):
    """A real TFDS dataset in GLUE's sst2 layout, prepared as array_record, is read by
    random access (no TensorFlow is installed): every example, TFDS's `validation` for
    our `dev`, labels as GLUE's ids."""
    pytest.importorskip("tensorflow_datasets")
    from tests.tfds_toy import GLUE_TOY, build_glue

    dataset = build_glue(tmp_path)
    dev = glue.read_tfds_examples("sst2", tmp_path, "dev", dataset=dataset)
    got = sorted((e.guid, e.text_a, e.label) for e in dev)
    assert got == [(f"dev-{i}", s, str(label)) for s, label, i in GLUE_TOY["validation"]]
    assert len(glue.read_tfds_examples("sst2", tmp_path, "train", dataset=dataset)) == 3
    with pytest.raises(UserError, match="has no split 'test'"):
        glue.read_tfds_examples("sst2", tmp_path, "test", dataset=dataset)


def test_tfds_glue_stored_as_tfrecord_needs_tensorflow(monkeypatch):
    """A TFRecord GLUE dataset cannot be read without TensorFlow: one error naming the
    dataset and how to convert it, never a traceback or a download."""
    import sys

    from tests.fake_tfds import make_module

    rows = {("glue/sst2", "validation"): [{"sentence": "Fine.", "label": 1, "idx": 0}]}
    fake = make_module(rows, {}, file_format="tfrecord")
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", fake)
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    with pytest.raises(
        UserError, match=r"glue/sst2 in /tfds is stored as TFRecord.*convert_format"
    ):
        glue.read_tfds_examples("sst2", "/tfds", "dev")
    assert fake.calls == []
