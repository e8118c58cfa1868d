"""Gatys et al.'s losses as pure tensor functions, normalised so layers balance themselves.

Raw Gram losses of VGG layers differ by five orders of magnitude (relu1_1 ~1e5, relu5_1 ~1
with neural-style's normalisation), so deep layers barely count unless hand-tuned per-layer
weights balance them. Dividing each layer's squared error by its target's squared norm makes
every term a relative error, about 1 when far from the target and 0 on it, whatever the layer,
the weights source or the image size.
"""
import torch

EPS = 1e-8


class _Gram(torch.autograd.Function):
    """F Fᵀ / (C·H·W) in float32, from features in any dtype and either memory layout.

    Autograd's own gram (two matmuls back, one per operand, then their sum) costs more than
    the VGG it sits on: at 512 px the five style layers' grams took as long as the trunk's
    forward and backward. The gradient of a symmetric product needs one matmul,
    F·(dG + dGᵀ), and it stays in the features' dtype (bf16 under autocast), so no float copy
    of a feature map is made or differentiated.
    """

    @staticmethod
    def forward(ctx, features):
        b, c, h, w = features.shape
        nhwc = features.is_contiguous(memory_format=torch.channels_last) and c > 1
        # channels-last is (B, H, W, C) in memory: its (B, HW, C) view costs nothing
        f = features.permute(0, 2, 3, 1).reshape(b, h * w, c) if nhwc \
            else features.reshape(b, c, h * w)
        ctx.save_for_backward(f)
        ctx.nhwc, ctx.shape, ctx.norm = nhwc, features.shape, c * h * w
        g = _products(f.transpose(1, 2), f) if nhwc else _products(f, f.transpose(1, 2))
        return g.float() / ctx.norm

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        f, = ctx.saved_tensors
        b, c, h, w = ctx.shape
        sym = ((grad + grad.transpose(1, 2)) / ctx.norm).to(f.dtype)
        if ctx.nhwc:
            return (f @ sym).reshape(b, h, w, c).permute(0, 3, 1, 2)
        return (sym @ f).reshape(b, c, h, w)


def _products(a, b):
    # One mm per picture: bmm copies an operand that is a transposed view before multiplying
    # in bfloat16 (relu1_1's Gram at 256 px: 4.4 ms, against 1.3 ms for mm, which reads it
    # in place).
    return torch.stack([torch.mm(x, y) for x, y in zip(a, b)])


def gram(features: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, C) float32, normalised by C*H*W (as neural-style) so size does
    not matter."""
    return _Gram.apply(features)


def relative_mse(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """||x - target||^2 / ||target||^2: a scale-free error."""
    return (x - target).pow(2).sum() / (target.pow(2).sum() + EPS)


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return relative_mse(features.float(), target)


def style_loss(features: torch.Tensor, target_gram: torch.Tensor) -> torch.Tensor:
    return relative_mse(gram(features), target_gram)


def falloff(n: int, ratio: float = 4.0):
    """Style layer weights from shallow to deep, each `ratio` times less than the one before.

    Deep layers' Gram matrices describe the painting's objects more than its brushwork: with
    all five layers weighted alike, relu4_1 and relu5_1 are fitted so closely that the
    Scream's face appears among Tübingen's houses. neural-style's raw losses weight the
    shallow layers by orders of magnitude more (its relu5_1 term is left far from its
    target), and crowsonkb's style-transfer-pytorch uses 256, 64, 16, 4, 1, as this does.
    """
    return [ratio ** (n - 1 - i) for i in range(n)]


def blend_grams(grams, weights):
    """Weighted mean of several styles' Gram matrices (neural-style's -style_blend_weights)."""
    total = float(sum(weights))
    return sum(g * (w / total) for g, w in zip(grams, weights))


def tv_loss(image: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of neighbouring pixels: penalises high-frequency noise."""
    dx = image[..., :, 1:] - image[..., :, :-1]
    dy = image[..., 1:, :] - image[..., :-1, :]
    return dx.pow(2).mean() + dy.pow(2).mean()
