"""Evaluations of contextual embeddings without fine-tuning: `jaxbert eval-embeddings`.

- `wic`: Word-in-Context (Pilehvar & Camacho-Collados 2019), a cosine threshold;
- `wsd`: all-words WSD on the Raganato et al. (2017) framework with 1-nearest-neighbour
  sense centroids from SemCor (LMMS-style, Loureiro & Jorge 2019) and the MFS baseline;
- `wordsim`: Spearman ρ of static vectors (context-averaged, and the input table) on the
  word-similarity sets;
- `sts`: STS-B dev zero-shot, Spearman ρ of sentence-pair cosines (sentence models);
- `flores`: FLORES-200 cross-lingual sentence retrieval.

Each reader names the file and line of a malformed record; each task is scored with and
without the anisotropy corrections of `jaxbert.embed.corrections`, fitted on the task's
own training-side vectors (never on the scored ones).
"""
