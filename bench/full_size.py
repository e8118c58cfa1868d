"""Figures of a picture as a user sees it at 100 %, which the judge (512 px) cannot see.

    python bench/full_size.py OUTPUT.png PHOTO.jpg        # prints the figures of one picture

- fine_detail: the luminance's spectral energy above 0.2 cycles per pixel, the output's over
  the photo's (an enlargement has almost none; the photo itself 1.0).
- lattice: how far the strongest narrow peak of the luminance's spectrum stands above the
  spectrum around it (a regular pattern, such as a network's stride grid enlarged, is a
  spike; a photo or a painting has a smooth spectrum). Spectra are averaged over windowed
  256 px patches (Welch), so a real peak stands out of the patches' noise; the figure is
  the peak's power over the median of its 15x15 neighbourhood of frequencies.
- frame: per edge, the mean grey level (0-255) of the outer 6 px less that of the next 24,
  the output's less the photo's: a light or dark band along an edge that the photo has not.
"""
import sys

import numpy as np
from PIL import Image

FINE = 0.2          # cycles per pixel: detail finer than a 5 px period
PATCH = 256
OUTER, INNER = 6, 24


def grey(image) -> np.ndarray:
    """Luminance in 0..255, float64, from a PIL image or a path."""
    if not isinstance(image, Image.Image):
        image = Image.open(image)
    rgb = np.asarray(image.convert('RGB'), dtype=np.float64)
    return rgb @ np.array([0.299, 0.587, 0.114])


def _patches(y, patch=PATCH):
    h, w = y.shape
    if min(h, w) < patch:
        patch = 2 ** int(np.log2(min(h, w)))
    step = patch // 2
    for r in range(0, h - patch + 1, step):
        for c in range(0, w - patch + 1, step):
            yield y[r:r + patch, c:c + patch]


def spectrum(y, patch=PATCH):
    """Welch power spectrum (patch x patch, DC at the centre) of a grey picture."""
    patches = list(_patches(y, patch))
    n = patches[0].shape[0]
    window = np.outer(np.hanning(n), np.hanning(n))
    total = np.zeros((n, n))
    for p in patches:
        total += np.abs(np.fft.fft2((p - p.mean()) * window)) ** 2
    return np.fft.fftshift(total / len(patches))


def _radius(n):
    f = np.fft.fftshift(np.fft.fftfreq(n))
    return np.hypot(f[:, None], f[None, :])


def fine_detail(output, photo) -> float:
    """Energy above FINE cycles/px of the output's luminance over the photo's (same size)."""
    a, b = grey(output), grey(photo)
    if a.shape != b.shape:
        raise ValueError('output %s and photo %s differ in size' % (a.shape, b.shape))
    sa, sb = spectrum(a), spectrum(b)
    fine = _radius(sa.shape[0]) > FINE
    return float(sa[fine].sum() / max(sb[fine].sum(), 1e-12))


def lattice(image, low=0.02) -> float:
    """The strongest spectral peak above `low` cycles/px over its neighbourhood's median."""
    s = spectrum(grey(image))
    k = 7
    padded = np.pad(s, k, mode='wrap')
    windows = np.lib.stride_tricks.sliding_window_view(padded, (2 * k + 1, 2 * k + 1))
    background = np.median(windows.reshape(s.shape + (-1,)), axis=-1)
    ratio = s / np.maximum(background, 1e-12)
    ratio[_radius(s.shape[0]) <= low] = 0
    return float(ratio.max())


def edge_bands(y):
    """Per edge: mean of the outer OUTER px less the mean of the next INNER px."""
    o, i = OUTER, OUTER + INNER
    return {'top': y[:o].mean() - y[o:i].mean(),
            'bottom': y[-o:].mean() - y[-i:-o].mean(),
            'left': y[:, :o].mean() - y[:, o:i].mean(),
            'right': y[:, -o:].mean() - y[:, -i:-o].mean()}


def frame(output, photo):
    """Per edge, the output's band figure less the photo's (grey levels)."""
    a, b = edge_bands(grey(output)), edge_bands(grey(photo))
    return {k: float(a[k] - b[k]) for k in a}


def figures(output, photo) -> dict:
    """All of them for one picture; the photo is resized to the output if it differs."""
    photo = Image.open(photo) if not isinstance(photo, Image.Image) else photo
    output = Image.open(output) if not isinstance(output, Image.Image) else output
    if photo.size != output.size:
        photo = photo.convert('RGB').resize(output.size, Image.LANCZOS)
    edges = frame(output, photo)
    return {'fine_detail': fine_detail(output, photo), 'lattice': lattice(output),
            'lattice_photo': lattice(photo), 'frame_worst': max(edges.values(), key=abs),
            **{'frame_' + k: v for k, v in edges.items()}}


if __name__ == '__main__':
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    for key, value in figures(sys.argv[1], sys.argv[2]).items():
        print('%-14s %8.3f' % (key, value))
