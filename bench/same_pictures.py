"""Do two checkouts paint the same pictures, bit for bit, on this CPU?

    PYTHONPATH=CHECKOUT python bench/same_pictures.py -o out/before.json
    PYTHONPATH=CHECKOUT python bench/same_pictures.py -o out/after.json --against out/before.json

Renders a fixed small set through the public nst_core.stylize() and writes the sha256 of each
output's pixels to a JSON file; --against compares with a file written earlier and exits 1
if any picture differs. Meant for moves that must not change a pixel: run it on the commit
before and the commit after. Needs the real VGG and Magenta weights in the cache; the
trained network is a small random one made here from a fixed seed. About 2-3 minutes on
two cores.

One torch thread throughout: Fast and Trained use the threads other processes leave idle,
and a different thread count may sum in a different order. Quality's tiles are forced by
lowering memory.QUALITY_TILE, the one knob outside stylize() this uses (tile_size is
Fast's and Trained's only).
"""
import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from nst_core import stylize

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / 'samples'


def picture(name, side):
    image = Image.open(SAMPLES / name).convert('RGB')
    image.thumbnail((side, side), Image.LANCZOS)
    return image


def random_trained_model(folder):
    """A TransformerNet from a fixed seed, saved as `train` saves one (a plain state dict)."""
    from nst_core.models.transformer import TransformerNet
    torch.manual_seed(1234)
    net = TransformerNet()
    with torch.no_grad():                     # a random net paints grey; give it a little life
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    path = Path(folder) / 'random_trained.pth'
    torch.save(net.state_dict(), path)
    return str(path)


def cases(trained):
    photo, scream, starry = (picture(n, 512) for n in
                             ('astronaut.jpg', 'the_scream.jpg', 'starry_night.jpg'))
    draft = dict(method='quality', preset='draft', size=256, iterations=8, seed=3)
    return {
        'quality draft': (photo, [starry], draft),
        'quality tiled': (photo, [starry], dict(draft, _quality_tile=128)),
        'quality init fast': (photo, [starry], dict(draft, init='fast', iterations=4)),
        'quality luminance, two styles': (
            photo, [starry, scream], dict(draft, preserve_colors='luminance',
                                          style_weights=[0.3, 0.7], strength=0.8)),
        'fast enlarged, tiled': (photo, [starry], dict(method='fast', size=1600,
                                                       tile_size=256, seed=5)),
        'fast histogram, two styles': (
            photo, [starry, scream], dict(method='fast', size=640, style_weights=[2, 1],
                                          preserve_colors='histogram', strength=0.6,
                                          style_scale=0.8, detail=0.5)),
        'fast luminance': (photo, [scream], dict(method='fast', size=400,
                                                 preserve_colors='luminance')),
        'trained tiled': (photo, [], dict(method='trained', trained_model=trained, size=900,
                                          style_scale=0.5, tile_size=128)),
        'trained histogram': (photo, [], dict(method='trained', trained_model=trained,
                                              size=500, preserve_colors='histogram',
                                              strength=0.7, detail=0.3)),
    }


def render(content, styles, options):
    from nst_core import memory
    options = dict(options)
    tile = options.pop('_quality_tile', None)
    before = memory.QUALITY_TILE
    if tile:
        memory.QUALITY_TILE = tile
    try:
        return stylize(content, styles, log=lambda line: None, **options)
    finally:
        memory.QUALITY_TILE = before


def digest(image):
    pixels = np.asarray(image)
    return '%s %s' % ('x'.join(map(str, pixels.shape)), hashlib.sha256(pixels.tobytes())
                      .hexdigest())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('-o', '--output', required=True, help='JSON file to write')
    ap.add_argument('--against', help='JSON file of an earlier run to compare with')
    ap.add_argument('--only', nargs='+', help='run only these cases (names as in the JSON)')
    args = ap.parse_args()
    torch.set_num_threads(1)
    found = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, (content, styles, options) in cases(random_trained_model(folder)).items():
            if args.only and name not in args.only:
                continue
            start = time.monotonic()
            found[name] = digest(render(content, styles, options))
            print('%-32s %5.1f s  %s' % (name, time.monotonic() - start, found[name]),
                  flush=True)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(found, indent=1, sort_keys=True) + '\n')
    if not args.against:
        return 0
    expected = json.loads(Path(args.against).read_text())
    differ = [n for n in found if expected.get(n) != found[n]]
    for name in differ:
        print('DIFFERS: %s\n  was %s\n  now %s' % (name, expected.get(name), found[name]))
    print('%d of %d pictures the same' % (len(found) - len(differ), len(found)))
    return 1 if differ else 0


if __name__ == '__main__':
    sys.exit(main())
