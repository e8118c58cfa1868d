"""Magenta's arbitrary image stylization network (Ghiasi et al. 2017), written out in torch.

Two parts:
- ``StylePredictor``: a MobileNetV2 that maps a style image to a 100-d style vector.
- ``Transformer``: a small encoder / residual / decoder network whose 13 instance norms take
  their scale and shift from the style vector (conditional instance normalisation).

Both take RGB images in 0..1, NCHW. The layout mirrors the TF-Lite graphs the weights come
from (see nst_core/weights/magenta.py): TF "SAME" padding in the predictor (stride-2 convs
pad bottom/right), reflection padding in the transformer, nearest-neighbour upsampling.

The transformer's stages are separate methods so that nst_core/fast.py can run a large image
in tiles with exactly the whole image's instance-norm statistics.
"""
import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

STYLE_DIM = 100
PREDICTOR_SIZE = 256      # the predictor was trained on 256x256 style images
EPS = 1e-5                # the graph's instance-norm epsilon

# MobileNetV2 inverted residual blocks: (expansion, output channels, repeats, first stride)
MOBILENET_V2 = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


def pad_same(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """Zero-pad as TensorFlow's "SAME": any odd padding goes to the bottom / right."""
    pads = []
    for size in (x.shape[-1], x.shape[-2]):
        total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


class SameConv(nn.Conv2d):
    """Conv2d with TF "SAME" padding (the predictor was trained in TensorFlow)."""

    def forward(self, x):
        return super().forward(pad_same(x, self.kernel_size[0], self.stride[0]))


def _conv_relu6(c_in, c_out, kernel, stride=1, groups=1):
    return nn.Sequential(SameConv(c_in, c_out, kernel, stride, groups=groups), nn.ReLU6())


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, 3x3 depthwise, 1x1 linear projection (+ skip)."""

    def __init__(self, c_in, c_out, expansion, stride):
        super().__init__()
        hidden = c_in * expansion
        self.expand = _conv_relu6(c_in, hidden, 1) if expansion != 1 else nn.Identity()
        self.depthwise = _conv_relu6(hidden, hidden, 3, stride, groups=hidden)
        self.project = nn.Conv2d(hidden, c_out, 1)
        self.skip = stride == 1 and c_in == c_out

    def forward(self, x):
        y = self.project(self.depthwise(self.expand(x)))
        return x + y if self.skip else y


class StylePredictor(nn.Module):
    """Style image (B, 3, H, W) in 0..1 -> style vector (B, 100). Any H, W (global pooling)."""

    def __init__(self):
        super().__init__()
        self.conv = _conv_relu6(3, 32, 3, 2)
        blocks, c_in = [], 32
        for expansion, c_out, repeats, stride in MOBILENET_V2:
            for i in range(repeats):
                blocks.append(InvertedResidual(c_in, c_out, expansion, stride if i == 0 else 1))
                c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.conv_1 = _conv_relu6(c_in, 1280, 1)
        self.bottleneck = nn.Linear(1280, STYLE_DIM)

    def forward(self, image):
        x = image.contiguous(memory_format=torch.channels_last)
        x = self.conv_1(self.blocks(self.conv(x)))
        return self.bottleneck(x.mean((2, 3)))


def instance_stats(x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per-sample, per-channel mean and (biased) variance, as the graph's moments.

    Two plain passes: torch.var_mean over H, W took 4.6 ms on an 8x288x384 activation on
    one CPU thread, a mean and a mean of squared deviations 0.5 ms (the 13 norms were a
    third of the network's time).
    """
    mean = x.mean((2, 3), keepdim=True)
    return mean, (x - mean).square().mean((2, 3), keepdim=True)


def region_bounds(region, h, w):
    """(y0, y1, x0, x1): `region`, (top, bottom, left, right) as fractions of the height
    and width, widened to whole pixels of an h x w map (never empty). Fractions hold at every
    resolution of the network, so one region names the same part of the picture in all its
    layers."""
    top, bottom, left, right = region
    y0, x0 = int(top * h), int(left * w)
    return y0, max(y0 + 1, math.ceil(bottom * h)), x0, max(x0 + 1, math.ceil(right * w))


def within(x: torch.Tensor, region) -> torch.Tensor:
    """x's part inside `region` (see region_bounds; None: all of x)."""
    if region is None:
        return x
    y0, y1, x0, x1 = region_bounds(region, *x.shape[-2:])
    return x[..., y0:y1, x0:x1]


def conditional_instance_norm(x, gamma, beta, mean, var):
    """Normalise x with (mean, var), then scale and shift by the style's gamma and beta."""
    scale = gamma[..., None, None] * torch.rsqrt(var + EPS)
    return x * scale + (beta[..., None, None] - mean * scale)


class StyleNorm(nn.Module):
    """Conditional instance norm: gamma and beta are linear maps of the style vector."""

    def __init__(self, channels):
        super().__init__()
        self.gamma = nn.Linear(STYLE_DIM, channels)
        self.beta = nn.Linear(STYLE_DIM, channels)

    def forward(self, x, style, stats: Optional[Tuple[torch.Tensor, torch.Tensor]] = None,
                region=None):
        """stats: (mean, var) to normalise with instead of x's own (e.g. a whole image's);
        region: take x's own from that part of it only (see within)."""
        mean, var = instance_stats(within(x, region)) if stats is None else stats
        return conditional_instance_norm(x, self.gamma(style), self.beta(style), mean, var)


class ReflectConv(nn.Conv2d):
    """Conv2d after reflection padding of kernel // 2 (no zero borders in the picture)."""

    def forward(self, x):
        p = self.kernel_size[0] // 2
        return super().forward(F.pad(x, (p, p, p, p), mode='reflect'))


class NormConv(nn.Module):
    """Reflect-padded conv followed by a style norm (the decoder's and residuals' unit)."""

    def __init__(self, c_in, c_out, kernel):
        super().__init__()
        self.conv = ReflectConv(c_in, c_out, kernel)
        self.norm = StyleNorm(c_out)

    def forward(self, x, style, region=None):
        return self.norm(self.conv(x), style, region=region)


class Residual(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv1 = NormConv(channels, channels, 3)
        self.conv2 = NormConv(channels, channels, 3)

    def forward(self, x, style, region=None):
        return x + self.conv2(F.relu(self.conv1(x, style, region), inplace=True), style, region)


class Transformer(nn.Module):
    """Content (B, 3, H, W) in 0..1 and style vector (B, 100) -> stylised image in 0..1.

    H and W must be multiples of 4 (two stride-2 convs, two 2x upsamplings). `region`
    (see within) makes every instance norm take its statistics from that part of the picture:
    the picture proper, when it is surrounded by a margin painted only to be cut off.
    The encoder's batch norms are folded into its conv biases. The stages are exposed
    (encode, residuals, decoder_conv, decoder_out) so a large image can be run in tiles.
    """

    def __init__(self):
        super().__init__()
        self.contract = nn.ModuleList([ReflectConv(3, 8, 9), ReflectConv(8, 16, 3, stride=2),
                                       ReflectConv(16, 32, 3, stride=2)])
        self.residual = nn.ModuleList([Residual(32) for _ in range(5)])
        self.expand = nn.ModuleList([NormConv(32, 16, 3), NormConv(16, 8, 3), NormConv(8, 3, 9)])

    def encode(self, content):
        """Full resolution -> quarter resolution, 32 channels. No instance norms here."""
        if content.shape[-1] % 4 or content.shape[-2] % 4:
            raise ValueError('transformer input sides must be multiples of 4, not %dx%d'
                             % tuple(content.shape[-2:][::-1]))
        # channels-last is 2-3x faster for these thin convs on CPU (oneDNN), same numbers
        x = content.contiguous(memory_format=torch.channels_last)
        for conv in self.contract:
            x = F.relu(conv(x), inplace=True)
        return x

    def residuals(self, x, style, region=None):
        for block in self.residual:
            x = block(x, style, region)
        return x

    def decoder_conv(self, i, x):
        """Decoder layer i's conv, after 2x upsampling for the first two layers."""
        if i < 2:
            x = F.interpolate(x, scale_factor=2, mode='nearest')
        return self.expand[i].conv(x)

    def decoder_out(self, i, y, style, stats=None, region=None):
        """Decoder layer i's style norm and activation on its conv output y."""
        y = self.expand[i].norm(y, style, stats, region)
        return F.relu(y, inplace=True) if i < 2 else torch.sigmoid(y)

    def forward(self, content, style, region=None):
        x = self.residuals(self.encode(content), style, region)
        for i in range(3):
            x = self.decoder_out(i, self.decoder_conv(i, x), style, region=region)
        return x


class ArbitraryStyleNet(nn.Module):
    """Predictor + transformer from one state dict (keys 'predictor.*', 'transformer.*')."""

    def __init__(self, state_dict: Optional[dict] = None):
        super().__init__()
        self.predictor = StylePredictor()
        self.transformer = Transformer()
        if state_dict is not None:
            self.load_state_dict(state_dict)
        self.to(memory_format=torch.channels_last)
        self.requires_grad_(False)
        self.eval()
