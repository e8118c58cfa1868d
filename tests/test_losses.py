import pytest
import torch

from nst_core import losses


def test_gram_is_normalised_by_size():
    torch.manual_seed(0)
    small = torch.rand(1, 8, 16, 16)
    big = small.repeat_interleave(2, 2).repeat_interleave(2, 3)  # same statistics, 4x pixels
    assert torch.allclose(losses.gram(small), losses.gram(big), atol=1e-6)


def test_gram_matches_definition():
    f = torch.rand(2, 3, 4, 5)
    g = losses.gram(f)
    flat = f.reshape(2, 3, 20)
    expected = torch.einsum('bik,bjk->bij', flat, flat) / (3 * 4 * 5)
    assert torch.allclose(g, expected)
    assert torch.allclose(g, g.transpose(1, 2))


def _autograd_gram(f):
    b, c, h, w = f.shape
    m = f.float().reshape(b, c, h * w)
    return m @ m.transpose(1, 2) / (c * h * w)


@pytest.mark.parametrize('layout', [torch.contiguous_format, torch.channels_last])
def test_gram_gradient_is_autograds(layout):
    """The one-matmul backward equals autograd's two-matmul one, in either memory layout."""
    torch.manual_seed(3)
    f = torch.rand(2, 6, 5, 7).contiguous(memory_format=layout).requires_grad_(True)
    target = torch.rand(2, 6, 6)
    ref = f.detach().clone().requires_grad_(True)
    (losses.gram(f) - target).pow(2).sum().backward()
    (_autograd_gram(ref) - target).pow(2).sum().backward()
    assert torch.allclose(losses.gram(f), _autograd_gram(ref), atol=1e-6)
    assert torch.allclose(f.grad, ref.grad, atol=1e-6)
    assert f.grad.is_contiguous(memory_format=layout)


def test_gram_of_bf16_features_is_float32_and_close():
    torch.manual_seed(4)
    f = torch.rand(1, 16, 12, 12).contiguous(memory_format=torch.channels_last)
    g = losses.gram(f.bfloat16().requires_grad_(True))
    assert g.dtype == torch.float32
    assert torch.allclose(g, _autograd_gram(f), rtol=2e-2)


def test_falloff_weights_shallow_layers_most():
    assert losses.falloff(5) == [256, 64, 16, 4, 1]
    assert losses.falloff(1) == [1]
    assert losses.falloff(3, ratio=2) == [4, 2, 1]


def test_relative_losses_are_scale_free():
    torch.manual_seed(1)
    f, t = torch.rand(1, 4, 8, 8), torch.rand(1, 4, 8, 8)
    assert torch.isclose(losses.content_loss(f, t), losses.content_loss(f * 1e3, t * 1e3))
    assert losses.content_loss(t, t) == 0
    shallow = losses.style_loss(f * 1e3, losses.gram(t * 1e3))
    deep = losses.style_loss(f, losses.gram(t))
    assert torch.isclose(shallow, deep, rtol=1e-4)


def test_blend_grams_is_weighted_mean():
    a, b = torch.ones(1, 2, 2), torch.zeros(1, 2, 2)
    assert torch.allclose(losses.blend_grams([a, b], [3, 1]), torch.full((1, 2, 2), 0.75))


def test_tv_loss_zero_on_flat_and_grows_with_noise():
    flat = torch.full((1, 3, 10, 10), 0.5)
    assert losses.tv_loss(flat) == 0
    torch.manual_seed(2)
    noisy = flat + 0.1 * torch.randn_like(flat)
    noisier = flat + 0.2 * torch.randn_like(flat)
    assert 0 < losses.tv_loss(noisy) < losses.tv_loss(noisier)
