"""Johnson et al.'s (2016) image transformation network, in pytorch/examples' layout.

The layout (module names, shapes, the 0..255 pixel convention) is that of pytorch/examples'
fast_neural_style TransformerNet, so its published models (candy, mosaic, rain_princess,
udnie) and the models `python -m nst_core train` writes load either way:

    conv1 9x9 3->32, in1 | conv2 3x3/2 32->64, in2 | conv3 3x3/2 64->128, in3
    res1..res5: conv1 3x3, in1, relu, conv2 3x3, in2, + input
    deconv1 (x2 nearest, 3x3 128->64), in4 | deconv2 (x2, 3x3 64->32), in5 | deconv3 9x9 32->3

Every convolution reflects its input by half its kernel first; every norm is an affine
instance norm; ReLU after each norm except the residual blocks' second and the output.
Pixels go in and come out in 0..255 (the output is not clamped).

The forward pass is split into stages whose instance norms can take their statistics from
outside (`stats`), so trained.py can run a picture in tiles and still normalise each layer
over the whole picture, as one pass does.
"""
import re
from typing import Dict, Optional, Sequence, Tuple

import torch
from torch import nn
from torch.nn import functional as F

Stats = Tuple[torch.Tensor, torch.Tensor]      # per-channel (mean, biased variance), (1,C,1,1)
NORM_EPS = 1e-5                                # nn.InstanceNorm2d's default
RESIDUAL_BLOCKS = 5
# (name, in, out, kernel, stride) of the encoder's convolutions, (name, in, out, kernel,
# upsampling factor) of the decoder's: the convolutions outside the residual blocks
ENCODER = [('conv1', 3, 32, 9, 1), ('conv2', 32, 64, 3, 2), ('conv3', 64, 128, 3, 2)]
DECODER = [('deconv1', 128, 64, 3, 2), ('deconv2', 64, 32, 3, 2)]
OUTPUT = ('deconv3', 32, 3, 9, 1)
# Old pytorch/examples models (saved by torch 0.3) carry running statistics for every
# instance norm, which torch >= 0.4's InstanceNorm2d does not track; their README drops them.
STALE_KEY = re.compile(r'(^|\.)in\d+\.(running_mean|running_var|num_batches_tracked)$')


class ConvLayer(nn.Module):
    """Reflection padding by half the kernel, then a convolution (stride 1 or 2)."""

    def __init__(self, cin, cout, kernel, stride=1, upsample=1):
        super().__init__()
        self.pad, self.upsample = kernel // 2, upsample
        self.conv2d = nn.Conv2d(cin, cout, kernel, stride)

    def forward(self, x):
        if self.upsample > 1:
            x = F.interpolate(x, scale_factor=self.upsample, mode='nearest')
        return self.conv2d(F.pad(x, (self.pad,) * 4, mode='reflect'))


def norm(layer: nn.InstanceNorm2d, x: torch.Tensor, stats: Optional[Stats] = None):
    """The affine instance norm `layer` of x, over x itself or with given statistics."""
    if stats is None:
        return layer(x)
    mean, var = (s.to(x.dtype) for s in stats)
    scale = layer.weight.view(1, -1, 1, 1).to(x.dtype) * torch.rsqrt(var + NORM_EPS)
    return (x - mean) * scale + layer.bias.view(1, -1, 1, 1).to(x.dtype)


class ResidualBlock(nn.Module):
    def __init__(self, channels=128):
        super().__init__()
        self.conv1 = ConvLayer(channels, channels, 3)
        self.in1 = nn.InstanceNorm2d(channels, affine=True)
        self.conv2 = ConvLayer(channels, channels, 3)
        self.in2 = nn.InstanceNorm2d(channels, affine=True)

    def forward(self, x):
        return x + self.in2(self.conv2(F.relu(self.in1(self.conv1(x)))))


class TransformerNet(nn.Module):
    def __init__(self):
        super().__init__()
        for i, (name, cin, cout, k, stride) in enumerate(ENCODER, 1):
            setattr(self, name, ConvLayer(cin, cout, k, stride))
            setattr(self, 'in%d' % i, nn.InstanceNorm2d(cout, affine=True))
        for i in range(1, RESIDUAL_BLOCKS + 1):
            setattr(self, 'res%d' % i, ResidualBlock(128))
        for i, (name, cin, cout, k, up) in enumerate(DECODER, len(ENCODER) + 1):
            setattr(self, name, ConvLayer(cin, cout, k, upsample=up))
            setattr(self, 'in%d' % i, nn.InstanceNorm2d(cout, affine=True))
        name, cin, cout, k, stride = OUTPUT
        setattr(self, name, ConvLayer(cin, cout, k, stride))

    # --- stages: each norm may take outside statistics (tiles of one picture) ----------

    def encode_to(self, x, depth: int, stats: Sequence[Optional[Stats]] = (None,) * 3):
        """x through the first `depth` encoder convolutions; the norms after all but the
        last of them (in1 .. in<depth-1>) use stats[i] where given."""
        for i, (name, *_rest) in enumerate(ENCODER[:depth]):
            x = getattr(self, name)(x)
            if i < depth - 1:
                x = F.relu(norm(getattr(self, 'in%d' % (i + 1)), x, stats[i]))
        return x

    def encode(self, x, stats: Sequence[Optional[Stats]] = (None,) * 3):
        """(B, 128, H/4, W/4) from (B, 3, H, W) in 0..255."""
        x = self.encode_to(x, len(ENCODER), stats)
        return F.relu(norm(self.in3, x, stats[2]))

    def residuals(self, x):
        for i in range(1, RESIDUAL_BLOCKS + 1):
            x = getattr(self, 'res%d' % i)(x)
        return x

    def decode_to(self, x, depth: int, stats: Sequence[Optional[Stats]] = (None, None)):
        """Quarter-resolution features through `depth` upsampling convolutions (1, 2) or to
        the output (3); the norms before the last one reached use stats where given."""
        for i, (name, *_rest) in enumerate(DECODER[:depth]):
            x = getattr(self, name)(x)
            if i < depth - 1 or depth > len(DECODER):
                x = F.relu(norm(getattr(self, 'in%d' % (i + 4)), x, stats[i]))
        if depth > len(DECODER):
            x = getattr(self, OUTPUT[0])(x)
        return x

    def forward(self, x):
        """(B, 3, H, W) in 0..255 -> (B, 3, H', W'), H' = H for H a multiple of 4."""
        return self.decode_to(self.residuals(self.encode(x)), len(DECODER) + 1)


def clean_state(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """A state dict without the stale instance-norm statistics of old models."""
    return {k: v for k, v in state.items() if not STALE_KEY.search(k)}


def layout_problems(state: dict, net: Optional[TransformerNet] = None):
    """What keeps `state` from loading into a TransformerNet: [] or phrases for a message."""
    expected = (net or TransformerNet()).state_dict()
    problems = []
    missing = [k for k in expected if k not in state]
    if missing:
        problems.append('it lacks %s%s' % (', '.join(missing[:3]),
                                          ' and %d more' % (len(missing) - 3)
                                          if len(missing) > 3 else ''))
    extra = [k for k in state if k not in expected]
    if extra:
        problems.append('it has keys the network does not (%s%s)'
                        % (', '.join(extra[:3]), ', ...' if len(extra) > 3 else ''))
    for k, v in expected.items():
        got = state.get(k)
        if got is None:
            continue
        if not isinstance(got, torch.Tensor) or not got.is_floating_point():
            problems.append('%s is not a floating-point tensor' % k)
        elif tuple(got.shape) != tuple(v.shape):
            problems.append('%s has shape %s, not %s' % (k, tuple(got.shape), tuple(v.shape)))
    return problems
