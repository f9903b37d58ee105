"""Training: the :class:`~seq2seq.training.trainer.Trainer` loop and what it is made of (loss,
schedules, dev evaluation, history, run checkpoints, DDP, the job's data and tokenizers)."""
