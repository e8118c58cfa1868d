"""Gatys et al.'s losses as pure tensor functions, normalised so layers balance themselves.

Raw Gram losses of VGG layers differ by five orders of magnitude (relu1_1 ~1e5, relu5_1 ~1
with neural-style's normalisation), so deep layers barely count unless hand-tuned per-layer
weights balance them. Dividing each layer's squared error by its target's squared norm makes
every term a relative error, about 1 when far from the target and 0 on it, whatever the layer,
the weights source or the image size.
"""
import torch

EPS = 1e-8


def gram(features: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, C), normalised by C*H*W (as neural-style) so size does not matter."""
    b, c, h, w = features.shape
    f = features.reshape(b, c, h * w)
    return f @ f.transpose(1, 2) / (c * h * w)


def relative_mse(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """||x - target||^2 / ||target||^2: a scale-free error."""
    return (x - target).pow(2).sum() / (target.pow(2).sum() + EPS)


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return relative_mse(features, target)


def style_loss(features: torch.Tensor, target_gram: torch.Tensor) -> torch.Tensor:
    return relative_mse(gram(features), target_gram)


def blend_grams(grams, weights):
    """Weighted mean of several styles' Gram matrices (neural-style's -style_blend_weights)."""
    total = float(sum(weights))
    return sum(g * (w / total) for g, w in zip(grams, weights))


def tv_loss(image: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of neighbouring pixels: penalises high-frequency noise."""
    dx = image[..., :, 1:] - image[..., :, :-1]
    dy = image[..., 1:, :] - image[..., :-1, :]
    return dx.pow(2).mean() + dy.pow(2).mean()
