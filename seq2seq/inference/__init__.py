"""Inference: the :class:`Translator` (bundle -> tokenizers + model + search) and checkpoint
averaging."""

from seq2seq.inference.translator import Translation, Translator

__all__ = ["Translation", "Translator"]
