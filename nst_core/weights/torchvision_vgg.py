"""VGG-19 from torchvision's official URL, and what a torchvision VGG state dict looks like.

The cached file keeps only `features.<i>.weight/bias` of the conv layers (float32): the
classifier (400 MB of fully connected layers) is never used for style transfer.
"""
import os
from pathlib import Path
from typing import Dict, List, Tuple

from .base import Source, SourceInfo, WeightsError
from .cache import disk_free, download_url, torch_load_plain

# Conv layers per block and their widths, as in torchvision.models.vgg cfgs 'D' and 'E'.
BLOCKS = {'vgg16': [2, 2, 3, 3, 3], 'vgg19': [2, 2, 4, 4, 4]}
WIDTHS = [64, 128, 256, 512, 512]


def conv_shapes(arch: str) -> List[Tuple[int, tuple]]:
    """(index in torchvision's `features` Sequential, weight shape) of each conv layer."""
    out, index, channels = [], 0, 3
    for n_convs, width in zip(BLOCKS[arch], WIDTHS):
        for _ in range(n_convs):
            out.append((index, (width, channels, 3, 3)))
            index += 2          # conv, relu
            channels = width
        index += 1              # max pool
    return out


def features_state(state: Dict, what: str) -> Tuple[str, Dict]:
    """(arch, float32 CPU features.* conv tensors) of a torchvision VGG-16/19 state dict.

    The arch is guessed from the number of conv weights; every expected key and shape is
    checked, so a ResNet, a batch-norm VGG or a truncated file gets a WeightsError that says
    what was expected.
    """
    import torch
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    convs = [k for k, v in tensors.items() if k.startswith('features.') and k.endswith('.weight')
             and v.dim() == 4]
    guess = {13: 'vgg16', 16: 'vgg19'}.get(len(convs))
    if guess is None:
        sample = ', '.join(list(state)[:3]) or 'nothing'
        raise WeightsError('%s is not a torchvision VGG-16/19 state dict: expected 13 or 16 conv '
                           'weights named features.<i>.weight, found %d (keys start with %s)'
                           % (what, len(convs), sample))
    out = {}
    for index, shape in conv_shapes(guess):
        for key, want in (('features.%d.weight' % index, shape),
                          ('features.%d.bias' % index, shape[:1])):
            t = tensors.get(key)
            if t is None or tuple(t.shape) != want:
                found = 'missing' if t is None else 'shape %s' % (tuple(t.shape),)
                raise WeightsError('%s does not look like a torchvision %s state dict: %s is %s, '
                                   'expected shape %s (batch-norm VGGs are not supported)'
                                   % (what, guess, key, found, want))
            t = t.detach().to('cpu', torch.float32).contiguous()
            if not torch.isfinite(t).all():
                raise WeightsError('%s holds non-finite values in %s' % (what, key))
            out[key] = t
    return guess, out


class TorchvisionVGG(Source):
    """torchvision's ImageNet VGG: fetched from its URL, checked, reduced to the conv layers."""

    def __init__(self, name, arch, url, sha256, size, url_env=None, timeout=10.0):
        self.info = SourceInfo(name=name, arch=arch,
                               description='torchvision IMAGENET1K_V1 (as in Gatys et al.)',
                               licence='torchvision (BSD-3-Clause); trained on ImageNet, '
                                       'whose terms apply',
                               origin=url)
        self.url, self.sha256, self.size = url, sha256, size
        self.url_env, self.timeout = url_env, timeout

    def upstream_url(self) -> str:
        # A mirror may be named in the environment; the pinned sha256 still has to match.
        return (os.environ.get(self.url_env) if self.url_env else None) or self.url

    def convert(self, cache_dir, log):
        url = self.upstream_url()
        raw = Path(cache_dir) / 'downloads' / url.rstrip('/').rsplit('/', 1)[-1]
        needed = self.size * 1.2 + 100e6   # the download plus its converted conv layers
        if disk_free(cache_dir) < needed:
            raise WeightsError('fetching %s needs %.1f GB free in %s'
                               % (self.info.name, needed / 1e9, cache_dir))
        download_url(url, self.sha256, self.size, raw, timeout=self.timeout, log=log)
        try:
            state = torch_load_plain(raw, hint='the download from %s is damaged' % url)
            arch, features = features_state(state, 'the download from %s' % url)
        finally:
            raw.unlink()
        if arch != self.info.arch:
            raise WeightsError('%s holds a %s, expected %s' % (url, arch, self.info.arch))
        return features


# torchvision pins only the 8-hex prefix of the sha256 in the file name (check_hash). The full
# sha256 and size below are the values several independent projects record for this file; the
# prefix agrees with torchvision's.
VGG19 = TorchvisionVGG(
    'vgg19', 'vgg19',
    url='https://download.pytorch.org/models/vgg19-dcbb9e9d.pth',
    sha256='dcbb9e9dad569fff7a846263a77324fc34978fea2bfb039c012d710e1776ae44',
    size=574673361,
    url_env='NST_CORE_VGG19_URL')
