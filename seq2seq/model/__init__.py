"""The network: encoder (:mod:`.encoder`), attention (:mod:`.attention`), decoder
(:mod:`.decoder`, state in :mod:`.decoder_state`) and the :class:`Seq2Seq` model with the decoder
protocol that search uses (:mod:`.seq2seq`)."""

from seq2seq.model.decoder_state import DecoderState
from seq2seq.model.encoder import EncoderOut
from seq2seq.model.seq2seq import Seq2Seq, build_model

__all__ = ["DecoderState", "EncoderOut", "Seq2Seq", "build_model"]
