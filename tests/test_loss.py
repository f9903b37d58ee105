"""Tests for seq2seq.training.loss: label-smoothed, padding-masked cross entropy."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from seq2seq.training.loss import label_smoothed_cross_entropy


def _data():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 4, 11, generator=g, requires_grad=True)  # (B, T, V)
    target = torch.tensor([[5, 6, 3, 0], [7, 3, 0, 0], [4, 8, 9, 3]])  # (B, T)
    return logits, target


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3])
def test_matches_torch_cross_entropy(eps: float) -> None:
    logits, target = _data()
    out = label_smoothed_cross_entropy(logits, target, eps, ignore_index=0)
    ref = F.cross_entropy(logits.reshape(-1, 11), target.reshape(-1), ignore_index=0,
                          label_smoothing=eps, reduction="sum")
    nll = F.cross_entropy(logits.reshape(-1, 11), target.reshape(-1), ignore_index=0,
                          reduction="sum")
    torch.testing.assert_close(out.loss, ref)
    torch.testing.assert_close(out.nll, nll)
    assert out.ntokens == 9
    assert not out.nll.requires_grad
    (g,) = torch.autograd.grad(out.loss, logits)
    (g_ref,) = torch.autograd.grad(ref, logits)
    torch.testing.assert_close(g, g_ref)
    assert (g[target == 0] == 0).all()


def test_padding_positions_do_not_change_loss() -> None:
    logits, target = _data()
    a = label_smoothed_cross_entropy(logits, target, 0.1)
    changed = logits.detach().clone()
    changed[target == 0] = 100.0
    b = label_smoothed_cross_entropy(changed, target, 0.1)
    torch.testing.assert_close(a.loss, b.loss)


def test_flat_inputs_without_padding_and_hand_value() -> None:
    logits = torch.tensor([[0.0, 0.0, 0.0, 0.0], [2.0, 0.0, 0.0, 0.0]])  # (N, V)
    target = torch.tensor([1, 1])
    out = label_smoothed_cross_entropy(logits, target, 0.2, ignore_index=0)
    # uniform row 0: -log p = log 4 for every class, smoothed or not
    lp1 = torch.log_softmax(logits[1], 0)
    expected = torch.log(torch.tensor(4.0)) + (0.8 * -lp1[1] + 0.2 * -lp1.mean())
    torch.testing.assert_close(out.loss, expected)
    assert out.ntokens == 2


def test_bad_epsilon_raises() -> None:
    logits, target = _data()
    with pytest.raises(ValueError, match="label smoothing"):
        label_smoothed_cross_entropy(logits, target, 1.0)
