"""VGG-16/19 as a feature extractor with named layers (conv1_1, relu1_1, pool1, ...).

Takes RGB in 0..1 and normalises it the torchvision way inside, so every weights source is
converted to that input convention once, at fetch time.
"""
from typing import Dict, Iterable, Optional

import torch
from torch import nn

CONFIGS = {
    'vgg16': [2, 2, 3, 3, 3],   # conv layers per block
    'vgg19': [2, 2, 4, 4, 4],
}
WIDTHS = [64, 128, 256, 512, 512]
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def layer_names(arch: str):
    """Names of the modules of torchvision's vgg.features, in order."""
    names = []
    for block, n_convs in enumerate(CONFIGS[arch], 1):
        for i in range(1, n_convs + 1):
            names += ['conv%d_%d' % (block, i), 'relu%d_%d' % (block, i)]
        names.append('pool%d' % block)
    return names


class VGGFeatures(nn.Module):
    """The layers of a VGG up to the deepest one asked for; forward returns their outputs."""

    def __init__(self, arch: str, layers: Iterable[str], state_dict: Optional[dict] = None,
                 pooling: str = 'max', width_divisor: int = 1):
        super().__init__()
        names = layer_names(arch)
        self.layers = list(dict.fromkeys(layers))
        unknown = [n for n in self.layers if n not in names]
        if unknown:
            raise ValueError('unknown %s layer(s) %s; known: %s'
                             % (arch, ', '.join(unknown), ', '.join(names)))
        depth = max(names.index(n) for n in self.layers) + 1
        self.names = names[:depth]
        self.features = _build(arch, depth, pooling, width_divisor)
        if state_dict is not None:
            self._load(state_dict)
        self.register_buffer('mean', torch.tensor(MEAN).view(1, 3, 1, 1))
        self.register_buffer('std', torch.tensor(STD).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def _load(self, state_dict):
        wanted = {k: v for k, v in state_dict.items()
                  if k.startswith('features.') and int(k.split('.')[1]) < len(self.features)}
        missing = self.features.load_state_dict(
            {k[len('features.'):]: v for k, v in wanted.items()}, strict=False).missing_keys
        if missing:
            raise ValueError('VGG weights lack %s' % ', '.join(missing[:4]))

    def forward(self, image: torch.Tensor) -> Dict[str, torch.Tensor]:
        x = (image - self.mean) / self.std
        out = {}
        for name, module in zip(self.names, self.features):
            x = module(x)
            if name in self.layers:
                out[name] = x
        return out


def _build(arch, depth, pooling, width_divisor):
    pool = nn.MaxPool2d if pooling == 'max' else nn.AvgPool2d
    modules, channels = [], 3
    for block, n_convs in enumerate(CONFIGS[arch]):
        width = max(WIDTHS[block] // width_divisor, 1)
        for _ in range(n_convs):
            modules += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(inplace=False)]
            channels = width
        modules.append(pool(2, 2))
    return nn.Sequential(*modules[:depth])


def tiny_random(arch='vgg16', layers=('relu4_2',), seed=0, pooling='max'):
    """A 16x thinner VGG with random weights: for plumbing tests, fast and download-free."""
    gen = torch.Generator().manual_seed(seed)
    model = VGGFeatures(arch, layers, pooling=pooling, width_divisor=16)
    with torch.no_grad():
        for m in model.features:
            if isinstance(m, nn.Conv2d):
                fan_in = m.in_channels * 9
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (2 / fan_in) ** 0.5)
                m.bias.zero_()
    return model
