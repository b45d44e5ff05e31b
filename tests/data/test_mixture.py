"""Corpus mixtures: smoothed shares, counter-based draws, one corpus per example,
determinism and exact resume, and the errors for bad mixtures."""

from __future__ import annotations

import numpy as np
import pytest

from jaxbert.data import mixture, pipeline, prepare
from jaxbert.errors import UserError
from tests.conftest import REPO

SEQ, BATCH = 64, 8


@pytest.mark.parametrize("alpha", [1.0, 0.5, 0.3])
def test_realized_shares_match_the_smoothed_probabilities(alpha):
    """Three corpora of 9M, 0.9M and 0.1M tokens: q_i = p_i^α / Σ p_j^α, and 200k
    counter-based draws land within 0.005 of each q_i."""
    tokens = [9_000_000, 900_000, 100_000]
    q = mixture.sampling_probabilities(tokens, alpha)
    p = np.array(tokens) / sum(tokens)
    np.testing.assert_allclose(q, p**alpha / (p**alpha).sum())
    draws = mixture.draw_corpora(7, np.arange(200_000), q)
    np.testing.assert_allclose(np.bincount(draws, minlength=3) / 200_000, q, atol=0.005)
    assert alpha == 1.0 or q[2] > p[2]  # smoothing raises the small corpus
    np.testing.assert_array_equal(
        draws[1000:2000], mixture.draw_corpora(7, np.arange(1000, 2000), q)
    )


def test_weights_and_parsing():
    specs = mixture.parse_corpora("en=a/prepared:3, ko=b/prepared:1")
    assert [(s.name, s.directory, s.weight) for s in specs] == [("en", "a/prepared", 3.0),
                                                                 ("ko", "b/prepared", 1.0)]  # fmt: skip
    np.testing.assert_allclose(
        mixture.sampling_probabilities([1, 1], 1.0, [3.0, 1.0]), [0.75, 0.25]
    )
    assert mixture.parse_corpora("runs/de/prepared")[0].name == "prepared"
    for spec, error in (("en=a:0", "must be > 0"), ("en=a:x", "is not a number"),
                        ("en=a:2,ko=b", "for every corpus or for none"), ("a,,b", "is empty"),
                        ("x=a,x=b", "names must differ")):  # fmt: skip
        with pytest.raises(UserError, match=error):
            mixture.parse_corpora(spec)
    with pytest.raises(UserError, match="sampling_alpha=0"):
        mixture.sampling_probabilities([1, 2], 0)


@pytest.fixture(scope="module")
def digits_dir(sp_model, tmp_path_factory):
    """A second corpus prepared with the same tokenizer, made only of digit words."""
    root = tmp_path_factory.mktemp("digits")
    rng = np.random.default_rng(0)
    docs = ["\n".join(" ".join(str(x) for x in rng.integers(0, 10, 12)) + " ." for _ in range(6))
            for _ in range(40)]  # fmt: skip
    (root / "digits.txt").write_text("\n\n".join(docs) + "\n")
    prepare.prepare([root / "digits.txt"], sp_model, root / "prepared", workers=0, progress=False)
    return root / "prepared"


def _mix_cfg(prepared_dir, digits_dir, **kw):
    cfg = pipeline.default_data_config()
    cfg.corpora = f"wiki={prepared_dir},digits={digits_dir}"
    cfg.max_seq_length, cfg.max_predictions_per_seq, cfg.eval_fraction = SEQ, 10, 0.1
    cfg.update(kw)
    return cfg


@pytest.mark.parametrize("packing", ["pairs", "full_sentences"])
def test_every_example_comes_from_one_corpus_and_resume_is_exact(
    prepared_dir, digits_dir, sp_model, packing
):
    """corpus_id names each row's corpus: digit rows hold only digit/punctuation pieces, wiki
    rows hold letters; two iterators agree, and set_state mid-stream continues exactly."""
    from jaxbert.data.tokenizer import load_tokenizer

    objective = "mlm_nsp" if packing == "pairs" else "mlm"
    cfg = _mix_cfg(prepared_dir, digits_dir, packing=packing, objective=objective)
    it = pipeline.make_pretrain_iterator(cfg, batch_size=BATCH, seed=3, debug=True)
    batches = [next(it) for _ in range(6)]
    tok = load_tokenizer(sp_model)
    seen = set()
    for b in batches:
        for row, cid in zip(b["original_ids"], b["corpus_id"]):
            text = tok.decode([t for t in row if t > 4])
            letters = any(ch.isalpha() for ch in text)
            assert letters == (cid == 0), (cid, text[:60])
            seen.add(int(cid))
    assert seen == {0, 1}
    again = pipeline.make_pretrain_iterator(cfg, batch_size=BATCH, seed=3, debug=True)
    again.set_state({**again.get_state(), "next_batch": 4})
    for want in batches[4:]:
        got = next(again)
        assert all(np.array_equal(got[k], want[k]) for k in want)


def test_different_tokenizers_are_refused_naming_both(prepared_dir, tmp_path):
    vocab = REPO / "tests" / "fixtures" / "finetune" / "vocab.txt"
    (tmp_path / "t.txt").write_text("the cat sat .\nthe bank .\n\nthe river .\n")
    prepare.prepare([tmp_path / "t.txt"], vocab, tmp_path / "other", workers=0, progress=False)
    cfg = _mix_cfg(prepared_dir, tmp_path / "other", eval_fraction=0.0)
    with pytest.raises(
        UserError, match=r"other was prepared with another tokenizer than .*prepared"
    ):
        pipeline.make_pretrain_iterator(cfg, batch_size=BATCH, seed=0)
    cfg = _mix_cfg(prepared_dir, tmp_path / "missing")
    with pytest.raises(UserError, match="missing.*not found"):
        pipeline.make_pretrain_iterator(cfg, batch_size=BATCH, seed=0)


def test_data_inspect_reports_target_and_realized_shares(
    prepared_dir, digits_dir, tmp_path, capsys
):
    """`data inspect --corpora … --sampling-alpha 0.3`: per corpus its tokens, target share
    (q from the token counts) and realized example and token shares of the dump."""
    import json

    from jaxbert import cli

    spec = f"wiki={prepared_dir},digits={digits_dir}"
    argv = ["data", "inspect", "--corpora", spec, "--sampling-alpha", "0.3", "--n", "400",
            "--max-seq-length", "64", "--eval-fraction", "0.1", "--out", str(tmp_path / "x.jsonl")]  # fmt: skip
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    shares = json.loads(out[out.index("{") :])["corpora"]
    assert set(shares) == {"wiki", "digits"}
    q = mixture.sampling_probabilities([shares["wiki"]["tokens"], shares["digits"]["tokens"]], 0.3)
    assert shares["wiki"]["target_share"] == pytest.approx(q[0])
    for s in shares.values():
        assert abs(s["example_share"] - s["target_share"]) < 0.08  # 400 draws: ±4 sd
    assert cli.main(["data", "inspect", "--out", str(tmp_path / "y.jsonl")]) == 2
    assert "give --prepared DIR or --corpora" in capsys.readouterr().err


def test_pretraining_runs_on_a_mixture(prepared_dir, digits_dir, tmp_path):
    """`jaxbert pretrain` with data.corpora: the loop trains on mixed batches (corpus_id
    rides along), evaluates each corpus alone too, and the run directory records the
    mixture as part of its identity."""
    import json

    from jaxbert.config import load_config
    from jaxbert.train.loop import pretrain
    from tests.train.test_loop import CONFIG, overrides

    argv = overrides(prepared_dir, tmp_path / "run", **{
        "data.corpora": f"wiki={prepared_dir},digits={digits_dir}", "data.sampling_alpha": 0.5,
        "train.num_steps": 3, "checkpoint.every_steps": 3, "data.eval_fraction": 0.1,
        "train.eval_every": 3, "train.eval_batches": 2,
    })  # fmt: skip
    result = pretrain(load_config(CONFIG, argv))
    assert result.step == 3 and np.isfinite(result.train_metrics["loss"])
    for name in ("wiki", "digits"):  # per-corpus held-out metrics beside the mixed ones
        assert 0 <= result.eval_metrics[f"{name}/mlm_accuracy"] <= 1
        assert np.isfinite(result.eval_metrics[f"{name}/mlm_loss"])
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["data"]["corpora"].startswith("wiki=") and saved["data"]["sampling_alpha"] == 0.5
