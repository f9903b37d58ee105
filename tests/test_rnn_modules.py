"""Tests for seq2seq.rnn.modules: FusedLSTM/FusedGRU/FusedRNN parity with torch.nn.LSTM/GRU/RNN
(outputs, final states, every gradient), with and without biases and lengths."""

import itertools

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seq2seq.rnn import FusedGRU, FusedLSTM, FusedRNN, from_torch

F64 = torch.float64
STEPS, BATCH, ISIZE, HID = 6, 4, 5, 3
LENGTHS = torch.tensor([6, 2, 5, 1])
KINDS = ["lstm", "gru", "rnn_tanh", "rnn_relu"]


def _native(kind: str, *args, **kwargs) -> torch.nn.RNNBase:
    if kind.startswith("rnn_"):
        return torch.nn.RNN(*args, nonlinearity=kind[4:], **kwargs)
    return (torch.nn.LSTM if kind == "lstm" else torch.nn.GRU)(*args, **kwargs)


def _states(out, lstm):
    return list(out) if lstm else [out]


def _run_native(native, x, lengths, hx):
    if lengths is None:
        return native(x, hx)
    seq_dim = 1 if native.batch_first else 0
    packed = pack_padded_sequence(x, lengths, batch_first=native.batch_first, enforce_sorted=False)
    y, state = native(packed, hx)
    y, _ = pad_packed_sequence(y, batch_first=native.batch_first, total_length=x.shape[seq_dim])
    return y, state


def _check_parity(kind, layers, bidir, lengths, with_hx, batch_first=False, dtype=F64,
                  bias=True):
    lstm = kind == "lstm"
    gen = torch.Generator().manual_seed(layers * 10 + bidir)
    native = _native(kind, ISIZE, HID, num_layers=layers, bidirectional=bidir,
                     batch_first=batch_first, bias=bias)
    native = native.to(dtype)
    fused = from_torch(native)
    shape = (BATCH, STEPS, ISIZE) if batch_first else (STEPS, BATCH, ISIZE)
    x = torch.randn(shape, dtype=dtype, generator=gen)
    nstate = layers * (2 if bidir else 1)
    hx0 = [torch.randn(nstate, BATCH, HID, dtype=dtype, generator=gen) for _ in range(1 + lstm)]
    xs = [x.clone().requires_grad_() for _ in range(2)]
    hxs = [[h.clone().requires_grad_() for h in hx0] for _ in range(2)]

    def pack(h):
        return None if not with_hx else (tuple(h) if lstm else h[0])

    y_ref, s_ref = _run_native(native, xs[0], lengths, pack(hxs[0]))
    y, s = fused(xs[1], lengths, pack(hxs[1]))
    torch.testing.assert_close(y, y_ref)
    for a, b in zip(_states(s, lstm), _states(s_ref, lstm), strict=True):
        torch.testing.assert_close(a, b)
    gy = torch.randn(y.shape, dtype=dtype, generator=gen)
    gs = [torch.randn(a.shape, dtype=dtype, generator=gen) for a in _states(s, lstm)]
    loss_ref = (y_ref * gy).sum() + sum(
        (a * g).sum() for a, g in zip(_states(s_ref, lstm), gs, strict=True)
    )
    loss = (y * gy).sum() + sum((a * g).sum() for a, g in zip(_states(s, lstm), gs, strict=True))
    loss_ref.backward()
    loss.backward()
    torch.testing.assert_close(xs[1].grad, xs[0].grad)
    for (name, p_ref), (name2, p) in zip(
        native.named_parameters(), fused.named_parameters(), strict=True
    ):
        assert name == name2
        torch.testing.assert_close(p.grad, p_ref.grad, msg=name)
    if with_hx:
        for a, b in zip(hxs[1], hxs[0], strict=True):
            torch.testing.assert_close(a.grad, b.grad)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("layers,bidir", list(itertools.product([1, 2, 3], [False, True])))
@pytest.mark.parametrize("lengths", [None, LENGTHS], ids=["full", "ragged"])
def test_parity_with_native(kind, layers, bidir, lengths):
    _check_parity(kind, layers, bidir, lengths, with_hx=bool(layers % 2))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("lengths", [None, LENGTHS], ids=["full", "ragged"])
def test_parity_without_biases(kind, lengths):
    _check_parity(kind, 2, True, lengths, with_hx=True, bias=False)


@pytest.mark.parametrize("kind", KINDS)
def test_parity_batch_first_float32_trimmed(kind):
    # max length 5 < T = 6: trailing all-padding step is trimmed and padded back with zeros
    _check_parity(kind, 2, True, torch.tensor([5, 2, 5, 1]), True, True, torch.float32)


@pytest.mark.parametrize("cls", [FusedLSTM, FusedGRU, FusedRNN])
def test_results_do_not_depend_on_batch_composition(cls):
    torch.manual_seed(1)
    rnn = cls(ISIZE, HID, num_layers=2, bidirectional=True).double()
    x = torch.randn(STEPS, BATCH, ISIZE, dtype=F64)
    y, s = rnn(x, LENGTHS)
    h = s[0] if isinstance(s, tuple) else s
    for b in range(BATCH):
        n = int(LENGTHS[b])
        alone = torch.randn(STEPS, 1, ISIZE, dtype=F64) * 100  # garbage padding
        alone[:n] = x[:n, b : b + 1]
        y1, s1 = rnn(alone, torch.tensor([n]))
        h1 = s1[0] if isinstance(s1, tuple) else s1
        torch.testing.assert_close(y1[:, 0], y[:, b])
        torch.testing.assert_close(h1[:, 0], h[:, b])
        assert y[n:, b].abs().max() == 0 if n < STEPS else True


def test_dropout_only_between_layers_in_training():
    torch.manual_seed(2)
    rnn = FusedGRU(ISIZE, HID, num_layers=2, dropout=0.5).double()
    x = torch.randn(STEPS, BATCH, ISIZE, dtype=F64)
    rnn.eval()
    y_eval, _ = rnn(x)
    native = torch.nn.GRU(ISIZE, HID, num_layers=2).double()
    native.load_state_dict(rnn.state_dict())
    torch.testing.assert_close(y_eval, native(x)[0])
    rnn.train()
    y1, _ = rnn(x)
    y2, _ = rnn(x)
    assert (y1 - y_eval).abs().max() > 1e-3 and (y1 - y2).abs().max() > 1e-3
    one = FusedGRU(ISIZE, HID, num_layers=1, dropout=0.5).double().train()
    one.load_state_dict({k: v for k, v in rnn.state_dict().items() if k.endswith("l0")})
    torch.testing.assert_close(one(x)[0], one(x)[0])  # nothing to drop with one layer


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize(("fused_cls", "native_cls"), [
    (FusedLSTM, torch.nn.LSTM), (FusedGRU, torch.nn.GRU), (FusedRNN, torch.nn.RNN)])
def test_parameter_names_shapes_and_init_match_native(fused_cls, native_cls, bias):
    fused = fused_cls(7, 5, num_layers=2, bidirectional=True, bias=bias)
    native = native_cls(7, 5, num_layers=2, bidirectional=True, bias=bias)
    assert [(n, p.shape) for n, p in fused.named_parameters()] == [
        (n, p.shape) for n, p in native.named_parameters()
    ]
    assert len(list(fused.parameters())) == (16 if bias else 8)  # 2 layers x 2 directions
    bound = 1 / 5**0.5
    assert all(p.abs().max() <= bound for p in fused.parameters())
    fused.load_state_dict(native.state_dict())  # loads directly


def test_elman_options_and_repr():
    rnn = FusedRNN(3, 4, nonlinearity="relu", bias=False)
    assert rnn.nonlinearity == "relu" and not rnn.bias
    assert repr(rnn) == "FusedRNN(3, 4, num_layers=1, bias=False, nonlinearity='relu')"
    with pytest.raises(ValueError, match=r"nonlinearity must be one of \['tanh', 'relu'\]"):
        FusedRNN(3, 4, nonlinearity="sigmoid")


def test_bad_inputs_raise():
    rnn = FusedLSTM(ISIZE, HID)
    with pytest.raises(ValueError, match="3-D"):
        rnn(torch.randn(STEPS, ISIZE))
    with pytest.raises(ValueError, match="features"):
        rnn(torch.randn(STEPS, BATCH, ISIZE + 1))
    with pytest.raises(ValueError, match="initial state"):
        rnn(torch.randn(STEPS, BATCH, ISIZE), hx=(torch.zeros(1, 2, HID), torch.zeros(1, 2, HID)))
    with pytest.raises(ValueError, match="lengths"):
        rnn(torch.randn(STEPS, BATCH, ISIZE), torch.tensor([7, 1, 1, 1]))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("cls", [FusedLSTM, FusedGRU, FusedRNN])
def test_cuda_matches_cpu(cls):
    torch.manual_seed(3)
    rnn = cls(ISIZE, HID, num_layers=2, bidirectional=True)
    x = torch.randn(STEPS, BATCH, ISIZE, requires_grad=True)
    y, _ = rnn(x, LENGTHS)
    y.sum().backward()
    rnn_gpu = cls(ISIZE, HID, num_layers=2, bidirectional=True).cuda()
    rnn_gpu.load_state_dict(rnn.state_dict())
    xg = x.detach().cuda().requires_grad_()
    yg, _ = rnn_gpu(xg, LENGTHS)  # lengths on CPU, torch convention
    yg.sum().backward()
    torch.testing.assert_close(yg.cpu(), y, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(xg.grad.cpu(), x.grad, atol=1e-4, rtol=1e-4)


def test_autocast_runs_in_autocast_dtype_with_float32_grads():
    torch.manual_seed(4)
    rnn = FusedLSTM(ISIZE, HID, num_layers=2, bidirectional=True)
    x = torch.randn(STEPS, BATCH, ISIZE, requires_grad=True)
    y32, _ = rnn(x, LENGTHS)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, (h, c) = rnn(x, LENGTHS)
    assert y.dtype == h.dtype == c.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), y32, atol=3e-2, rtol=3e-2)
    y.float().sum().backward()
    assert x.grad.dtype == torch.float32 and rnn.weight_hh_l1.grad.dtype == torch.float32
    assert x.grad.abs().sum() > 0


@pytest.mark.parametrize("cls", [FusedLSTM, FusedGRU, FusedRNN])
def test_bf16_autocast_matches_float32_within_bf16_tolerance(cls):
    """Under bf16 autocast the fused core runs in bf16 (the state too); outputs, final states
    and every gradient stay within bf16 rounding of the float32 run (8 bits of mantissa: a
    relative error of ~0.4% per op, a few % after a ragged two-layer pass)."""
    torch.manual_seed(6)
    rnn = cls(ISIZE, HID, num_layers=2, bidirectional=True)
    x = torch.randn(STEPS, BATCH, ISIZE)
    runs = []
    for bf16 in (False, True):
        xi = x.clone().requires_grad_()
        rnn.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            y, s = rnn(xi, LENGTHS)
        h = s[0] if isinstance(s, tuple) else s
        assert y.dtype == (torch.bfloat16 if bf16 else torch.float32)
        (y.float().sum() + h.float().square().sum()).backward()
        runs.append((y.float(), h.float(), xi.grad, [p.grad for p in rnn.parameters()]))
    (y32, h32, gx32, gp32), (y16, h16, gx16, gp16) = runs
    torch.testing.assert_close(y16, y32, atol=3e-2, rtol=3e-2)
    torch.testing.assert_close(h16, h32, atol=3e-2, rtol=3e-2)
    torch.testing.assert_close(gx16, gx32, atol=6e-2, rtol=6e-2)
    for a, b in zip(gp16, gp32, strict=True):
        assert a.dtype == torch.float32  # fp32 master weights get fp32 gradients
        torch.testing.assert_close(a, b, atol=1e-1, rtol=6e-2)
