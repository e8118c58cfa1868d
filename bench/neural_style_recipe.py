"""neural-style's own recipe (jcjohnson/neural-style, the 2015 reference) on nst_core's engine.

One scale, L-BFGS from near-zero noise, and neural-style's loss normalisation and weights:
content 5 x mean squared error at relu4_2; style 100 x mean squared error of Gram matrices
divided by C*H*W at relu1_1 .. relu5_1, every layer weighted alike; total variation 1e-3 x
half the sum of squared neighbour differences. All of it in neural-style's units: an image
in Caffe's 0..255 scale, features of a Caffe-trained VGG (which vgg16-caffe is; its conv1_1
takes nst_core's normalised RGB but computes Caffe's features exactly).

Only the benchmark uses it: it is the baseline the product's presets are judged against.
"""
import torch
from torch import nn

from nst_core import imageio, losses
from nst_core.features import load_features, use_bf16
from nst_core.quality import optimise

CONTENT_LAYERS = ('relu4_2',)
STYLE_LAYERS = ('relu1_1', 'relu2_1', 'relu3_1', 'relu4_1', 'relu5_1')
WEIGHTS = dict(content=5.0, style=100.0, tv=1e-3)
CAFFE_MEAN_RGB = (123.68, 116.779, 103.939)


class NeuralStyleLoss(nn.Module):
    """neural-style's loss, in its units, of an RGB image in Caffe's 0..255 scale."""

    def __init__(self, vgg, content, style, bf16):
        super().__init__()
        self.vgg, self.bf16 = vgg, bf16
        with torch.no_grad():
            feats = self.features(content * 255)
            self.content = {n: feats[n].float() for n in CONTENT_LAYERS}
            style_feats = self.features(style * 255)
            self.grams = {n: losses.gram(style_feats[n]) for n in STYLE_LAYERS}

    def features(self, image255):
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=self.bf16):
            return self.vgg((image255 / 255).contiguous(memory_format=torch.channels_last))

    def forward(self, image255):
        feats = self.features(image255)
        content = sum((feats[n].float() - t).pow(2).mean() for n, t in self.content.items())
        style = sum((losses.gram(feats[n]) - g).pow(2).mean() for n, g in self.grams.items())
        dx = image255[..., :-1, 1:] - image255[..., :-1, :-1]
        dy = image255[..., 1:, :-1] - image255[..., :-1, :-1]
        tv = 0.5 * (dx.pow(2).sum() + dy.pow(2).sum())
        total = WEIGHTS['content'] * content + WEIGHTS['style'] * style + WEIGHTS['tv'] * tv
        return total, {'content': content.detach(), 'style': style.detach(), 'tv': tv.detach()}


def stylize_neural_style(content_img, style_img, *, size=512, steps=1000, seed=0,
                         model='vgg16-caffe', precision='auto',
                         report=lambda step, loss: None):
    """The 2015 recipe: a PIL image at `size`, after `steps` L-BFGS evaluations."""
    wh = imageio.working_size(content_img.size, size)
    content = imageio.to_tensor(imageio.resize(imageio.rgb(content_img), wh))
    style = imageio.to_tensor(imageio.resize(imageio.rgb(style_img),
                                             imageio.working_size(style_img.size, size)))
    vgg = load_features(model, CONTENT_LAYERS + STYLE_LAYERS, log=lambda m: None)
    vgg.to(memory_format=torch.channels_last)
    loss_fn = NeuralStyleLoss(vgg, content, style, use_bf16(precision, torch.device('cpu')))
    # neural-style: torch.randn(...):mul(0.001) in mean-subtracted Caffe units
    g = torch.Generator().manual_seed(seed)
    init = torch.tensor(CAFFE_MEAN_RGB).view(1, 3, 1, 1) + \
        0.001 * torch.randn(content.shape, generator=g)
    # L-BFGS (history 100, unit learning rate, no line search, no tolerances), on the image
    # in Caffe units, unclamped until it is saved, as neural-style
    out = optimise(init, loss_fn, steps, 'lbfgs', report, bounds=None)
    return imageio.to_pil((out / 255).clamp(0, 1))
