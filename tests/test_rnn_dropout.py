"""The uniform-draw dropout: F.dropout's distribution and scaling, its backward, its seeding."""

from __future__ import annotations

import pytest
import torch

from seq2seq.rnn import Dropout
from seq2seq.rnn.dropout import dropout


def test_keeps_one_minus_p_of_the_elements_scaled_by_its_inverse() -> None:
    torch.manual_seed(0)
    x = torch.rand(400, 500) + 0.5  # no zeros of its own
    y = dropout(x, 0.3)
    kept = y != 0
    assert abs(kept.float().mean().item() - 0.7) < 0.005  # 200k draws: sd of the mean ~0.001
    torch.testing.assert_close(y[kept], x[kept] * (1.0 / 0.7), rtol=0, atol=0)
    assert y.dtype == x.dtype and y.shape == x.shape


def test_backward_multiplies_by_the_same_mask() -> None:
    torch.manual_seed(1)
    x = (torch.rand(64, 33) + 0.5).requires_grad_()
    y = dropout(x, 0.25)
    (g,) = torch.autograd.grad((y * 3.0).sum(), x)
    want = (y != 0).float() * 3.0 / 0.75
    torch.testing.assert_close(g, want, rtol=0, atol=0)


def test_seeded_draws_repeat_and_differ_between_seeds() -> None:
    x = torch.ones(1000)
    torch.manual_seed(5)
    a = dropout(x, 0.5)
    torch.manual_seed(5)
    b = dropout(x, 0.5)
    torch.manual_seed(6)
    c = dropout(x, 0.5)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_identity_when_not_training_or_p_zero_and_zeros_at_p_one() -> None:
    x = torch.randn(7, 3)
    assert dropout(x, 0.4, training=False) is x
    assert dropout(x, 0.0) is x
    assert torch.equal(dropout(x, 1.0), torch.zeros_like(x))


def test_bf16_input_stays_bf16_with_exact_scale() -> None:
    torch.manual_seed(2)
    x = torch.full((5000,), 1.5, dtype=torch.bfloat16)
    y = dropout(x, 0.2)
    assert y.dtype == torch.bfloat16
    assert set(y.unique().tolist()) == {0.0, 1.875}  # 1.5 / 0.8, exact in bf16


def test_module_follows_train_and_eval_and_has_no_state() -> None:
    m = Dropout(0.5)
    assert repr(m) == "Dropout(p=0.5)" and m.state_dict() == {}
    x = torch.ones(2000)
    torch.manual_seed(3)
    assert (m(x) == 0).any()
    m.eval()
    assert m(x) is x
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\], got 1.5"):
        Dropout(1.5)
