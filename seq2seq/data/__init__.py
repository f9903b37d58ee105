"""Data: reading and writing corpora (:mod:`.corpus`), batching (:mod:`.batching`), preparing
the shipped corpus (:mod:`.prepare`) and a user's own (:mod:`.text_corpus`)."""

from seq2seq.data.batching import (
    Batch,
    ParallelDataset,
    TokenBatchSampler,
    collate,
    pad_sequences,
)
from seq2seq.data.corpus import load_parallel, read_lines

__all__ = ["Batch", "ParallelDataset", "TokenBatchSampler", "collate", "load_parallel",
           "pad_sequences", "read_lines"]
