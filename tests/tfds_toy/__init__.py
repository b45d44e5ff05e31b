"""A real TFDS dataset for the tests: `GeneratorBasedBuilder`, stored as array_record, so
it is built and read back without TensorFlow (the path `tfds:NAME` corpora take)."""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

from tests.conftest import WIKI_TINY


class JaxbertToyWiki(tfds.core.GeneratorBasedBuilder):
    """The tiny Wikipedia fixture's documents, one example each (`text`, paragraphs by line)."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({"text": tfds.features.Text()})
        )

    def _split_generators(self, dl_manager):
        from jaxbert.data import corpus

        docs = list(corpus.iter_corpus([WIKI_TINY]))
        return {
            "train": self._generate_examples(docs[2:]),
            "validation": self._generate_examples(docs[:2]),
        }

    def _generate_examples(self, docs):
        for i, doc in enumerate(docs):
            yield i, {"text": "\n".join(doc)}


def build(data_dir) -> str:
    JaxbertToyWiki(data_dir=str(data_dir), file_format="array_record").download_and_prepare()
    return "jaxbert_toy_wiki"


GLUE_TOY = {  # split → (sentence, label id, idx): SST-2's features, TFDS's class names
    "train": [("a fine film .", 1, 0), ("dull and long .", 0, 1), ("warm , funny .", 1, 2)],
    "validation": [("not good .", 0, 0), ("a delight .", 1, 1)],
}


class JaxbertToyGlue(tfds.core.GeneratorBasedBuilder):
    """GLUE's `sst2` config in TFDS's layout (`sentence`, `label` as ClassLabel
    negative/positive, `idx`), so `finetune --config.source=tfds` reads it as it would
    a prepared `glue/sst2`."""

    VERSION = tfds.core.Version("1.0.0")
    BUILDER_CONFIGS = [tfds.core.BuilderConfig(name="sst2")]

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "sentence": tfds.features.Text(),
                    "label": tfds.features.ClassLabel(names=["negative", "positive"]),
                    "idx": tfds.features.Scalar(dtype=np.int32),
                }
            )
        )

    def _split_generators(self, dl_manager):
        return {split: self._generate_examples(rows) for split, rows in GLUE_TOY.items()}

    def _generate_examples(self, rows):
        for sentence, label, idx in rows:
            yield idx, {"sentence": sentence, "label": label, "idx": idx}


def build_glue(data_dir) -> str:
    JaxbertToyGlue(
        config="sst2", data_dir=str(data_dir), file_format="array_record"
    ).download_and_prepare()
    return "jaxbert_toy_glue"
