"""Configs: every shipped file loads; unknown keys and wrong types name the key."""

from pathlib import Path

import pytest

from jaxbert.config import load_config
from jaxbert.errors import UserError
from jaxbert.model.config import SIZES, validate

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize(
    "path", sorted(str(p) for p in CONFIGS.rglob("*.py")), ids=lambda p: Path(p).name
)
def test_every_config_file_loads_and_validates(path):
    """Each file in configs/ builds a locked config whose model (if any) is valid."""
    cfg = load_config(path)
    model = cfg.get("model", cfg if "num_layers" in cfg else None)
    if model is not None:
        validate(model)


def test_model_size_files_have_the_documented_shapes():
    """tiny 2L/128H/2 … large 24L/1024H/16 heads, FFN 4096; BERT hyper-parameters."""
    for size, (layers, hidden, heads, ffn) in SIZES.items():
        cfg = load_config(str(CONFIGS / "model" / f"{size}.py"))
        assert (cfg.num_layers, cfg.hidden_size, cfg.num_heads, cfg.intermediate_size) == (
            layers,
            hidden,
            heads,
            ffn,
        )
        assert cfg.max_position_embeddings == 512 and cfg.type_vocab_size == 2
        assert (
            cfg.layer_norm_eps == 1e-12 and cfg.hidden_dropout == 0.1 and cfg.hidden_act == "gelu"
        )
    assert SIZES["base"] == (12, 768, 12, 3072) and SIZES["large"] == (24, 1024, 16, 4096)


def test_overrides_parse_to_the_existing_type():
    """--config.a.b=v takes the type of the value it replaces."""
    cfg = load_config(
        str(CONFIGS / "pretrain" / "cpu_smoke.py"),
        [
            "--config.train.num_steps=7",
            "--config.optimizer.learning_rate=3e-4",
            "--config.model.scan_layers=false",
            "--config.output_dir",
            "/tmp/x",
        ],
    )
    assert cfg.train.num_steps == 7 and cfg.optimizer.learning_rate == 3e-4
    assert cfg.model.scan_layers is False and cfg.output_dir == "/tmp/x"


@pytest.mark.parametrize(
    "override, message",
    [
        ("--config.train.num_stpes=3", "unknown config key: config.train.num_stpes"),
        ("--config.trian.num_steps=3", "unknown config key: config.trian"),
        ("--config.train.num_steps=abc", "config.train.num_steps: expected int"),
        ("--config.model.scan_layers=maybe", "config.model.scan_layers: expected a bool"),
        ("--config.train.num_steps=1.5", "config.train.num_steps: expected int"),
    ],
)
def test_bad_overrides_are_errors_naming_the_key(override, message):
    """A typo or a wrong type never silently trains the wrong thing."""
    with pytest.raises(UserError, match=message.replace(".", r"\.")):
        load_config(str(CONFIGS / "pretrain" / "cpu_smoke.py"), [override])


def test_config_file_typo_is_an_error_naming_the_file(tmp_path):
    """A misspelt key inside a config file is rejected (the defaults are locked)."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from jaxbert.train.config import pretrain_defaults\n"
        "def get_config():\n    c = pretrain_defaults()\n    c.train.num_stpes = 3\n    return c\n"
    )
    with pytest.raises(UserError, match=r"bad\.py.*num_stpes"):
        load_config(str(bad))
    with pytest.raises(UserError, match="config file not found"):
        load_config(str(tmp_path / "missing.py"))


def test_attention_impl_defaults_for_old_configs_and_is_checked():
    """A model config saved before attention_impl existed loads as xla; an unknown kernel
    is refused naming the key; cudnn is refused on a machine without a CUDA GPU."""
    from jaxbert.model.config import ModelConfig, model_config
    from jaxbert.train.config import pretrain_defaults
    from jaxbert.train.loop import validate

    old = model_config("tiny").to_dict()
    del old["attention_impl"]
    assert ModelConfig.from_config(old).attention_impl == "xla"
    with pytest.raises(UserError, match="config.model.attention_impl='flash'"):
        ModelConfig.from_config({**old, "attention_impl": "flash"})
    cfg = pretrain_defaults()
    cfg.model = model_config("tiny", attention_impl="cudnn")
    cfg.data.source = "synthetic"
    with pytest.raises(UserError, match="attention_impl=cudnn needs a CUDA GPU"):
        validate(cfg)
