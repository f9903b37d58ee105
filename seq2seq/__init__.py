"""seq2seq: RNN-attention neural machine translation.

A fused recurrent core (:mod:`seq2seq.rnn`), an attention encoder-decoder
(:mod:`seq2seq.model.seq2seq`), batched beam search (:mod:`seq2seq.search`), Hydra training
(:mod:`seq2seq.cli.train`) and a litserve endpoint (:mod:`serve`).
"""

__version__ = "0.1.0"
