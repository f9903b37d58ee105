"""The core's tanh: float32 on the CPU through 2 sigmoid(2x) - 1, torch.tanh elsewhere."""

import pytest
import torch

from seq2seq.rnn.activation import tanh, tanh_

# every float32 magnitude that matters, both signs, plus the saturated and special values
GRID = torch.cat([
    torch.linspace(-12.0, 12.0, 240_001, dtype=torch.float64),
    torch.logspace(-30, 3, 4_001, dtype=torch.float64),
    -torch.logspace(-30, 3, 4_001, dtype=torch.float64),
])


def test_float32_is_within_3e_7_of_the_exact_value_everywhere():
    """Room for the sigmoid kernels of other instruction sets (1.8e-7 on AVX-512)."""
    x = GRID.float()
    exact = torch.tanh(x.double())
    for y in (tanh(x), tanh_(x.clone()), tanh(x, out=torch.empty_like(x))):
        assert y.dtype == torch.float32
        err = (y.double() - exact).abs().max().item()
        assert err <= 3e-7, err
        assert y.abs().max().item() <= 1.0


def test_float32_runs_the_sigmoid_identity():
    """Bit for bit the three passes, not torch.tanh."""
    x = torch.randn(1000)
    expected = torch.sigmoid(x * 2.0) * 2.0 - 1.0
    assert torch.equal(tanh(x), expected)
    assert torch.equal(tanh_(x.clone()), expected)


def test_saturation_and_special_values():
    x = torch.tensor([-1e30, -50.0, -0.0, 0.0, 50.0, 1e30, float("inf"), float("-inf")])
    assert torch.equal(tanh(x), torch.tensor([-1.0, -1.0, 0.0, 0.0, 1.0, 1.0, 1.0, -1.0]))
    assert tanh(torch.tensor([float("nan")])).isnan().all()


def test_in_place_on_a_strided_view_touches_only_the_view():
    base = torch.randn(2, 5, 3, 12)  # (D, T, B, 3H) like the GRU's gate buffer
    before = base.clone()
    view = base[:, 2, :, 8:]  # one step's n gate
    out = tanh_(view)
    assert out is view
    torch.testing.assert_close(view, torch.tanh(before[:, 2, :, 8:]), atol=3e-7, rtol=0)
    view.copy_(before[:, 2, :, 8:])
    assert torch.equal(base, before)


def test_out_form_writes_into_out_and_matches():
    x = torch.randn(4, 7)
    out = torch.full_like(x, 9.0)
    assert tanh(x, out=out) is out
    assert torch.equal(out, tanh(x))


def test_gradient_is_tanhs_own():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 32, generator=gen).requires_grad_()
    g = torch.randn(64, 32, generator=gen)
    y = tanh(x)
    (dx,) = torch.autograd.grad(y, x, g)
    yd = y.detach()
    torch.testing.assert_close(dx, g * (1 - yd * yd), atol=1e-7, rtol=1e-6)
    x_ref = x.detach().clone().requires_grad_()
    (dx_ref,) = torch.autograd.grad(torch.tanh(x_ref), x_ref, g)
    # |d(1 - y^2)| <= 2 |y| 3e-7 per unit of incoming gradient
    assert ((dx - dx_ref).abs() <= 6e-7 * g.abs()).all()


def test_without_grad_no_graph_is_kept():
    x = torch.randn(8, requires_grad=True)
    with torch.no_grad():
        y = tanh(x)
    assert y.grad_fn is None and not y.requires_grad


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16, torch.float16])
def test_other_dtypes_run_torch_tanh_itself(dtype):
    x = GRID.to(dtype)
    assert torch.equal(tanh(x), torch.tanh(x))
    assert torch.equal(tanh_(x.clone()), torch.tanh(x))
    assert torch.equal(tanh(x, out=torch.empty_like(x)), torch.tanh(x))


def test_float64_gradcheck():
    x = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(tanh, (x,))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_runs_torch_tanh_itself():
    x = torch.randn(1000, device="cuda")
    assert torch.equal(tanh(x), torch.tanh(x))
