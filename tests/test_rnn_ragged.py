"""Tests for seq2seq.rnn.ragged: per-sequence reversal, padding, final-state picking."""

import pytest
import torch

from seq2seq.rnn.ragged import Ragged


def test_reverse_is_per_sequence_and_an_involution():
    rg = Ragged(torch.tensor([3, 1, 4]), 4, 3, torch.device("cpu"))
    x = torch.arange(12.0).view(4, 3, 1)  # x[t, b] = 3t + b
    r = rg.reverse(x)
    # sequence 0 (len 3): steps 2,1,0 then the pad step 3 stays in place
    assert r[:, 0, 0].tolist() == [6.0, 3.0, 0.0, 9.0]
    assert r[:, 1, 0].tolist() == [1.0, 4.0, 7.0, 10.0]  # len 1: unchanged
    assert r[:, 2, 0].tolist() == [11.0, 8.0, 5.0, 2.0]  # full length: flipped
    torch.testing.assert_close(rg.reverse(r), x)


def test_full_lengths_behave_like_no_lengths():
    rg = Ragged(torch.tensor([4, 4]), 4, 2, torch.device("cpu"))
    assert rg.full
    x = torch.randn(4, 2, 3)
    torch.testing.assert_close(rg.reverse(x), x.flip(0))
    assert rg.last_rows(3) == slice(None) and rg.last_rows(2) is None


def test_padding_final_and_injection():
    rg = Ragged([2, 3], 3, 2, torch.device("cpu"))
    y = torch.ones(3, 2, 2)
    rg.zero_padding_(y)
    assert y[:, 0, 0].tolist() == [1.0, 1.0, 0.0] and y[:, 1, 0].tolist() == [1.0, 1.0, 1.0]
    states = torch.arange(8.0).view(1, 4, 2, 1)  # (D, T+1, B, H): value 2*s + b
    assert rg.final(states).flatten().tolist() == [4.0, 7.0]  # s = len
    grads = torch.zeros(1, 3, 2, 1)
    rg.inject_final_grad_(grads, torch.tensor([[[5.0], [6.0]]]))
    assert grads[0, :, 0, 0].tolist() == [0.0, 5.0, 0.0]
    assert grads[0, :, 1, 0].tolist() == [0.0, 0.0, 6.0]
    assert rg.last_rows(1).tolist() == [0] and rg.last_rows(2).tolist() == [1]
    assert rg.last_rows(0) is None


@pytest.mark.parametrize(
    "lengths, match",
    [([0, 2], r"\[1, 3\]"), ([4, 2], r"\[1, 3\]"), ([1, 2, 3], "shape"), ([1.0, 2.0], "integer")],
)
def test_bad_lengths_raise(lengths, match):
    with pytest.raises(ValueError, match=match):
        Ragged(torch.tensor(lengths), 3, 2, torch.device("cpu"))
