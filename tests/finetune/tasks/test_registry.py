"""One task registry (jaxbert.finetune.tasks): every task there runs the same from
`--task NAME` as from its shipped config file, and the rest of fine-tuning (recipes,
families, names) reads it rather than a table of its own."""

from __future__ import annotations

import pytest

from jaxbert import cli
from jaxbert.cli.finetune import _task_config
from jaxbert.config import load_config
from jaxbert.errors import UserError
from jaxbert.finetune import config as ft_config
from jaxbert.finetune import tasks
from tests.conftest import REPO


@pytest.mark.parametrize("name", list(tasks.TASKS))
def test_task_name_gives_its_shipped_config(name):
    """`--task NAME` (plus an override) equals the registry's config file with the same
    override: same recipe, family and every other key."""
    task = tasks.TASKS[name]
    spec = str(REPO / "configs" / "finetune" / task.config_file)
    override = ["--config.seed=3"]
    assert _task_config(name, override).to_dict() == load_config(spec, override).to_dict()
    assert ft_config.TASK_RECIPES[name] == task.recipe
    assert ft_config.task_family(name) == task.family


def test_unknown_tasks_and_both_or_neither_flag_are_one_line(capsys):
    """An unknown --task names the registry's tasks; --task with --config, or neither, is
    refused before anything runs."""
    with pytest.raises(UserError, match=r"unknown fine-tuning task 'bogus'.*'sst2'"):
        _task_config("bogus", [])
    assert tasks.get("NER").name == "conll2003" and tasks.get("SST-2").name == "sst2"
    assert cli.main(["finetune"]) == 2
    assert cli.main(["finetune", "--task", "sst2", "--config", "x.py"]) == 2
    assert "give --config FILE[:ARG] or --task NAME" in capsys.readouterr().err
