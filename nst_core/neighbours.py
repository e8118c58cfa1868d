"""Nearest-neighbour feature targets (Kolkin et al. 2022, "Neural Neighbor Style Transfer"):
the term that makes Best a method of its own.

Each feature of the picture is pulled towards the painting's feature most like it (centred
cosine distance), matched where a scale or tile starts and again as the picture changes.
Gram matrices say which textures a painting has and how much, not where: pushed harder they
put them anywhere and the photo goes (Normal at strength 1.25: edge F 0.784 against 0.813,
for a little style). The painting's feature nearest to a roof's still reads as that roof, so
with these targets Best pushes the Gram term twice as hard as Normal and paints bolder for the
edges it gives (docs/quality.md, Best).

NNST matches hypercolumns of ten layers and optimises towards nothing else; here two layers
(relu3_1, relu4_1: the strokes and what they depict), matched each on its own against a sample
of the painting's features, are one more loss beside Normal's: a few matrix products every
REMATCH steps and a cosine a step. Like NNST, what is matched is the picture with some of the
photo mixed in (quality.Recipe.photo; NNST's default is three quarters, Best's a tenth, as
Normal's content term already holds the photo): a structure the painting has nothing like
(a shuttle in Turner's haze) is then matched as the photo has it, not as the style has
already smeared it.
"""
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

import torch
from torch.nn import functional as F

from . import regions

LAYERS = ('relu3_1', 'relu4_1')
# Painting features kept per layer. A 512 px painting has about 13000 at relu3_1; the number
# bounds the matching's cost and memory (CHUNK x SAMPLES floats) at any painting size. Best
# was chosen and judged with 8192; all of them was not tried.
SAMPLES = 8192
CHUNK = 4096        # picture features matched at once: a CHUNK x SAMPLES matrix of floats


def flat(features: torch.Tensor) -> torch.Tensor:
    """(1, C, h, w) -> (h*w, C) float32."""
    return features.float().flatten(2)[0].t()


@dataclass
class PaintingSamples:
    """Sampled features of each painting, {layer: (n, C)}, and the blend weights: blended,
    a painting's share of the samples is its weight's."""
    each: List[Dict[str, torch.Tensor]]
    blend: Sequence[float]

    def pooled(self, layer: str) -> torch.Tensor:
        total = float(sum(self.blend))
        parts = [s[layer][:max(1, round(len(s[layer]) * b / total))]
                 for s, b in zip(self.each, self.blend) if b > 0]
        return torch.cat(parts)


def sample(paintings: Sequence[Dict[str, torch.Tensor]], blend, layers, generator,
           masks=None, count: int = SAMPLES) -> PaintingSamples:
    """Up to `count` features a layer of each painting's features (from features()), in a
    random order; masks: per painting None or (1, 1, H, W): only features inside it."""
    masks = masks if masks is not None else [None] * len(paintings)
    each = []
    for feats, mask in zip(paintings, masks):
        kept = {}
        for n in layers:
            f = flat(feats[n])
            if mask is not None:
                m = regions.at_layer(mask.float(), feats[n].shape[-2:]).flatten()
                # a mask thinner than the layer's cells: its strongest cells
                f = f[m >= 0.5 * min(1.0, float(m.max()))] if m.max() > 0 else f
            order = torch.randperm(len(f), generator=generator)[:count].to(f.device)
            kept[n] = f[order]
        each.append(kept)
    return PaintingSamples(each, list(blend))


def match(picture: torch.Tensor, painting: torch.Tensor):
    """(targets, centre): for each row of `picture` (n, C) the row of `painting` (m, C)
    nearest by cosine after both are centred on the painting's mean (NNST's distance: without
    the centring, ReLU features all point into one orthant and every match looks close);
    targets unit length, centred."""
    centre = painting.mean(0, keepdim=True)
    ref = F.normalize(painting - centre, dim=1)
    src = F.normalize(picture - centre, dim=1)
    nearest = torch.cat([(src[i:i + CHUNK] @ ref.t()).argmax(1)
                         for i in range(0, len(src), CHUNK)])
    return ref[nearest], centre


def distance(picture: torch.Tensor, targets: torch.Tensor, centre: torch.Tensor):
    """1 - centred cosine similarity of each row of `picture` (n, C) to its target (n,)."""
    return 1 - (F.normalize(picture - centre, dim=1) * targets).sum(1)


# Evaluations between matchings. Matched once where a scale starts, the targets are a
# painted copy of that start and hold the picture to it, a second content term (judged on the
# shared pairs: edge F up, style no better than Normal's); matched again every 10 steps they
# follow the picture as it takes the style (docs/quality.md, Best).
REMATCH = 10


class NeighbourTargets:
    """The term for one loss (a scale or a tile): matched on the picture it first sees and
    again every REMATCH evaluations.

    shares (RegionTargets.shares, (K, 1, h, w)): each painting's region; a pixel is pulled
    towards its own region's painting, weighed by its share. None: the blend, pooled.
    """

    def __init__(self, samples: PaintingSamples, layers):
        self.samples, self.layers = samples, list(layers)
        self.targets, self.calls = None, 0
        self._pooled = {}          # the blend's samples, drawn up once, not at every matching

    def loss(self, feats: Dict[str, torch.Tensor], shares: Optional[torch.Tensor] = None,
             query: Optional[Callable[[], Dict[str, torch.Tensor]]] = None):
        """The mean distance of `feats` to their targets. query: what to match from when a
        matching is due, if not `feats` (called only then: its VGG pass is paid every
        REMATCH evaluations)."""
        if self.calls % REMATCH == 0:
            with torch.no_grad():
                self.targets = self._match(query() if query is not None else feats, shares)
        self.calls += 1
        total = 0.0
        for n in self.layers:
            f = flat(feats[n])
            if shares is None:
                total = total + distance(f, *self.targets[n]).mean()
                continue
            for k, (t, c) in enumerate(self.targets[n]):
                w = regions.at_layer(shares[k:k + 1], feats[n].shape[-2:]).flatten()
                total = total + (w * distance(f, t, c)).mean()
        return total / len(self.layers)

    def _match(self, feats, shares):
        if shares is None:
            for n in self.layers:
                if n not in self._pooled:
                    self._pooled[n] = self.samples.pooled(n)
            return {n: match(flat(feats[n]), self._pooled[n]) for n in self.layers}
        return {n: [match(flat(feats[n]), s[n]) for s in self.samples.each]
                for n in self.layers}
