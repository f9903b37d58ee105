"""Tests for seq2seq.rnn.convert: exact state-dict conversion to and from torch.nn.LSTM/GRU/RNN."""

import pytest
import torch

from seq2seq.rnn import (
    FusedGRU,
    FusedLSTM,
    FusedRNN,
    from_torch,
    state_dict_from_torch,
    state_dict_to_torch,
    to_torch,
)

FUSED = {torch.nn.LSTM: FusedLSTM, torch.nn.GRU: FusedGRU, torch.nn.RNN: FusedRNN}


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("native_cls", [torch.nn.LSTM, torch.nn.GRU, torch.nn.RNN])
def test_round_trip_is_bit_exact_and_keeps_config(native_cls, bias):
    torch.manual_seed(0)
    extra = {"nonlinearity": "relu"} if native_cls is torch.nn.RNN else {}
    native = native_cls(5, 4, num_layers=2, bidirectional=True, batch_first=True, dropout=0.25,
                        bias=bias, **extra)
    native.eval()
    fused = from_torch(native)
    assert type(fused) is FUSED[native_cls] and fused.bias == bias
    assert getattr(fused, "nonlinearity", "relu") == "relu"
    assert (fused.num_layers, fused.bidirectional, fused.batch_first, fused.dropout) == (
        2,
        True,
        True,
        0.25,
    )
    assert not fused.training
    back = to_torch(fused)
    assert type(back) is native_cls and back.bias == bias
    assert getattr(back, "nonlinearity", "relu") == "relu"
    for (k1, v1), (k2, v2) in zip(
        native.state_dict().items(), back.state_dict().items(), strict=True
    ):
        assert k1 == k2 and torch.equal(v1, v2)
    x = torch.randn(3, 6, 5)
    torch.testing.assert_close(fused(x)[0], native(x)[0])
    # converted weights are copies: changing the fused module leaves the native one alone
    with torch.no_grad():
        fused.weight_ih_l0.add_(1.0)
    assert not torch.equal(fused.weight_ih_l0, native.weight_ih_l0)


def test_state_dict_helpers_with_prefix():
    native = torch.nn.GRU(3, 2, bidirectional=True)
    outer = {"enc.rnn." + k: v for k, v in native.state_dict().items()}
    outer["enc.embed.weight"] = torch.zeros(4, 3)
    sd = state_dict_from_torch(outer, prefix="enc.rnn.")
    assert sorted(sd) == sorted(outer)[1:]  # embed key dropped ("enc.embed" sorts first)
    fused = FusedGRU(3, 2, bidirectional=True)
    fused.load_state_dict({k[len("enc.rnn.") :]: v for k, v in sd.items()})
    assert torch.equal(fused.weight_hh_l0_reverse, native.weight_hh_l0_reverse)
    assert state_dict_to_torch(fused.state_dict()).keys() == native.state_dict().keys()


def test_unsupported_native_options_raise():
    with pytest.raises(ValueError, match="proj_size"):
        from_torch(torch.nn.LSTM(3, 4, proj_size=2))
    with pytest.raises(ValueError, match="projected"):
        state_dict_from_torch(torch.nn.LSTM(3, 4, proj_size=2).state_dict())
    with pytest.raises(TypeError, match="expected nn.LSTM, nn.GRU or nn.RNN, got Linear"):
        from_torch(torch.nn.Linear(3, 2))
    with pytest.raises(TypeError, match="expected FusedLSTM, FusedGRU or FusedRNN"):
        to_torch(torch.nn.GRU(3, 2))
