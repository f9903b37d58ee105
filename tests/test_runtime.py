"""Tests for seq2seq.runtime: device/precision resolution, autocast, RNG state round trip."""

from __future__ import annotations

import contextlib
import random

import pytest
import torch

from seq2seq import runtime
from seq2seq.runtime import autocast, resolve_device, resolve_precision, rng_state, set_rng_state

CPU = torch.device("cpu")


def test_resolve_device() -> None:
    assert resolve_device("cpu") == CPU
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto") == torch.device(expected)
    with pytest.raises(ValueError, match=r"train\.device must be 'auto', 'cpu' or 'cuda', got 'tpu'"):
        resolve_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_resolve_device_cuda_without_gpu() -> None:
    with pytest.raises(ValueError, match=r"train\.device=cuda but no CUDA device"):
        resolve_device("cuda")


def test_resolve_precision_on_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_precision("auto", CPU) is (torch.bfloat16 if runtime.native_bf16(CPU) else None)
    for native, auto, reason in ((True, torch.bfloat16, "bf16 (auto: this CPU has native bf16 "
                                  "matrix support)"),
                                 (False, None, "fp32 (auto: this CPU has no native bf16 matrix "
                                  "support)")):
        monkeypatch.setattr(runtime, "native_bf16", lambda device, n=native: n)
        assert resolve_precision("auto", CPU) is auto
        assert runtime.precision_reason("auto", CPU) == reason
        assert runtime.precision_reason("bf16", CPU) == "bf16 (precision=bf16)"
    assert resolve_precision("fp32", CPU) is None
    assert resolve_precision("bf16", CPU) is torch.bfloat16
    with pytest.raises(ValueError, match="Precision"):
        resolve_precision("fp8", CPU)
    with pytest.raises(ValueError, match=r"train\.precision=fp16 needs CUDA"):
        resolve_precision("fp16", CPU)
    with pytest.raises(ValueError, match=r"^precision=fp16 needs CUDA"):
        resolve_precision("fp16", CPU, key="precision")


def test_native_bf16_asks_onednn_not_cpuinfo() -> None:
    """The answer is oneDNN's (AVX512-BF16/AMX), whatever /proc/cpuinfo says."""
    assert runtime.native_bf16(CPU) is bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def test_autocast() -> None:
    a, b = torch.ones(2, 3), torch.ones(3, 4)
    with autocast(CPU, None) as ctx:
        assert (a @ b).dtype == torch.float32
    assert isinstance(autocast(CPU, None), contextlib.nullcontext) and ctx is None
    with autocast(CPU, torch.bfloat16):
        out = a @ b
    assert out.dtype == torch.bfloat16 and out.tolist() == [[3.0] * 4] * 2


def test_rng_state_round_trip_reproduces_the_draws() -> None:
    torch.manual_seed(7)
    random.seed(7)
    state = rng_state(CPU)
    assert state["cuda"] is None and state["torch"].dtype == torch.uint8
    first = (torch.rand(5), [random.random() for _ in range(3)])
    torch.manual_seed(99)  # disturb both generators
    random.seed(99)
    set_rng_state(state, CPU)
    again = (torch.rand(5), [random.random() for _ in range(3)])
    assert torch.equal(first[0], again[0]) and first[1] == again[1]


def test_rng_state_is_plain_data_that_survives_weights_only_loading(tmp_path) -> None:
    torch.manual_seed(3)
    random.seed(3)
    torch.save(rng_state(CPU), tmp_path / "rng.pt")
    expected = (torch.randint(1000, (4,)), random.randrange(1000))
    set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True), CPU)
    assert torch.equal(torch.randint(1000, (4,)), expected[0])
    assert random.randrange(1000) == expected[1]
