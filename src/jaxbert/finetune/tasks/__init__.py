"""The fine-tuning tasks, one registry: each task's family (the module under tasks/ with
its reader and official metric, and the `finetune/data.py` loader that turns it into
features), the kind of head it trains, its recipe (the BERT paper's usual picks) and the
config file that runs it. `finetune/config.py`, `finetune/data.py`, `cli/tools.py` and
`jaxbert finetune --task NAME` (the Makefile's `make finetune TASK=…`) all read it."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Task:
    name: str
    family: str  # glue | ner | squad: tasks/<family>.py reads it and scores it
    kind: str  # the head: classification | regression | token | span
    learning_rate: float  # searched in {5e-5, 4e-5, 3e-5, 2e-5} by the BERT paper
    max_seq_length: int
    epochs: int

    @property
    def recipe(self) -> tuple[float, int, int]:
        return self.learning_rate, self.max_seq_length, self.epochs

    @property
    def config_file(self) -> str:
        """The shipped config (under configs/finetune/) that runs this task."""
        return f"glue.py:{self.name}" if self.family == "glue" else f"{self.family}.py"


def _glue(name: str, lr: float, kind: str = "classification") -> Task:
    return Task(name, "glue", kind, lr, 128, 3)


# Small, noisy tasks (CoLA, MRPC, STS-B, RTE) like the higher rates.
TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        _glue("cola", 5e-5), _glue("sst2", 2e-5), _glue("mrpc", 5e-5),
        _glue("stsb", 5e-5, "regression"), _glue("qqp", 2e-5), _glue("mnli", 2e-5),
        _glue("qnli", 2e-5), _glue("rte", 5e-5), _glue("wnli", 2e-5),
        Task("conll2003", "ner", "token", 5e-5, 128, 3),
        Task("squad", "squad", "span", 3e-5, 384, 2),
    )
}  # fmt: skip
ALIASES = {"ner": "conll2003", "sst-2": "sst2", "sts-b": "stsb"}


def get(name: str) -> Task:
    """The task called `name` (case and a GLUE hyphen ignored); ValueError names the rest."""
    key = name.lower()
    key = ALIASES.get(key, key)
    if key not in TASKS:
        raise ValueError(f"unknown fine-tuning task {name!r}; choose one of {list(TASKS)}")
    return TASKS[key]


def names(family: str | None = None) -> tuple[str, ...]:
    return tuple(n for n, t in TASKS.items() if family is None or t.family == family)
