"""A real TFDS dataset for the tests: `GeneratorBasedBuilder`, stored as array_record, so
it is built and read back without TensorFlow (the path `tfds:NAME` corpora take)."""

from __future__ import annotations

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
