"""Colour preservation (Gatys et al. 2016, "Preserving color in neural artistic style transfer").

Pure functions on (B, 3, H, W) RGB tensors in 0..1.
"""
import torch

# YIQ (as neural-style's -original_colors): Y is luminance, I and Q carry the colour.
_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114],
                            [0.595716, -0.274453, -0.321263],
                            [0.211456, -0.522591, 0.311135]])


def _apply(matrix, image):
    return torch.einsum('ij,bjhw->bihw', matrix.to(image), image)


def rgb_to_yiq(image):
    return _apply(_RGB_TO_YIQ, image)


def yiq_to_rgb(image):
    return _apply(torch.linalg.inv(_RGB_TO_YIQ), image)


def luminance_transfer(stylized, content):
    """The stylised image's luminance with the content's colour (I and Q)."""
    y = rgb_to_yiq(stylized)[:, :1]
    iq = rgb_to_yiq(content.to(stylized))[:, 1:]
    return yiq_to_rgb(torch.cat([y, iq], 1)).clamp(0, 1)


def _sqrtm(cov, inverse=False):
    vals, vecs = torch.linalg.eigh(cov)
    vals = vals.clamp_min(1e-8).pow(-0.5 if inverse else 0.5)
    return vecs @ torch.diag_embed(vals) @ vecs.transpose(-1, -2)


def _stats(image):
    pixels = image.flatten(2)                      # (B, 3, N)
    mean = pixels.mean(2, keepdim=True)
    centred = pixels - mean
    cov = centred @ centred.transpose(1, 2) / pixels.shape[2]
    return pixels, mean, cov


def match_histogram(source, reference):
    """Recolour `source` so its colour mean and covariance match `reference`'s.

    The linear map is the symmetric (PCA-free) matrix square-root solution, which keeps
    hues in place rather than rotating them.
    """
    return match_colours(source, [reference], [1.0])


def match_colours(source, references, weights):
    """match_histogram against the blend of several references: the weighted mixture of
    their colour distributions (its mean, and its covariance about that mean)."""
    pixels, mu_s, cov_s = _stats(source.double())
    total = float(sum(weights))
    stats = [(w / total,) + _stats(r.double())[1:] for r, w in zip(references, weights)]
    mu_r = sum(w * mu for w, mu, _ in stats)
    cov_r = sum(w * (cov + (mu - mu_r) @ (mu - mu_r).transpose(1, 2)) for w, mu, cov in stats)
    transform = _sqrtm(cov_r) @ _sqrtm(cov_s, inverse=True)
    out = transform @ (pixels - mu_s) + mu_r
    return out.reshape(source.shape).to(source.dtype).clamp(0, 1)
