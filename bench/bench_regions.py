"""Styles by region against the naive way: two single-style pictures cut together by the mask.

    python bench/bench_regions.py                    # Quality Normal and Fast, 512 px
    python bench/bench_regions.py --methods fast --side 1024

For each case (a photo, its sky painted like one painting and the rest like another), in one
run: the region picture (one stylize() with style_masks) and the naive one (each painting
alone over the whole photo, then composited with the same mask), each method at --side px.
Judged per region by ../shared/tools/judge on the largest band of rows that lies inside the
region (the judge reads a crop like any picture: at 512 px), against that region's own
painting; the time of each way; and the border figure: the mean step between neighbouring
pixels along the mask's edge over the mean step inside the two regions (above 1: the edge
shows as a line of its own). Pictures and masks go to out/bench_regions/.

The sky masks are made here from the photos' colours (blue, or for picos also the white
cloud, grown down from the top edge), as a user would draw one with Select by Color.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).parent))
IMAGES = ROOT.parent / 'shared' / 'data' / 'images' / 'inputs'
OUT = ROOT / 'out' / 'bench_regions'
# photo, its folder, whether its sky has white clouds, the sky's painting, the rest's
CASES = [('tubingen', IMAGES, False, 'starry_night', 'the_scream'),
         ('picos', ROOT / 'samples', True, 'starry_night', 'the_scream')]


def sky_mask(photo, cloud=False, side=256):
    """An L mask of the photo's sky: sky-coloured pixels connected to the top edge, its edge
    softened by a pixel or two (as a feathered selection)."""
    small = photo.convert('RGB').copy()
    small.thumbnail((side, side))
    a = np.asarray(small, dtype=np.float64)
    r, g, b = a[..., 0], a[..., 1], a[..., 2]
    ok = (b > r + 25) & (b >= g)
    if cloud:
        ok |= (a.min(-1) > 170) & (a.max(-1) - a.min(-1) < 40)
    seen = np.zeros_like(ok)
    seen[0] = ok[0]
    while True:
        grown = seen.copy()
        grown[1:] |= seen[:-1]
        grown[:-1] |= seen[1:]
        grown[:, 1:] |= seen[:, :-1]
        grown[:, :-1] |= seen[:, 1:]
        grown &= ok
        if (grown == seen).all():
            break
        seen = grown
    m = Image.fromarray((seen * 255).astype(np.uint8))
    m = m.filter(ImageFilter.MaxFilter(3)).filter(ImageFilter.MinFilter(3))
    return m.resize(photo.size, Image.BILINEAR).filter(ImageFilter.GaussianBlur(1))


def composite(a, b, mask):
    """a where the mask is white, b where black (the naive way)."""
    return Image.composite(a, b, mask)


def band(mask, inside):
    """(left, top, right, bottom): the rows where at least 95 % of the pixels are inside the
    region (mask > 0.9, or < 0.1 for inside=False), longest run of them."""
    m = np.asarray(mask, dtype=np.float64) / 255
    rows = ((m > 0.9) if inside else (m < 0.1)).mean(1) >= 0.95
    best, start = (0, 0), None
    for y, ok in enumerate(list(rows) + [False]):
        if ok and start is None:
            start = y
        elif not ok and start is not None:
            best = max(best, (start, y), key=lambda s: s[1] - s[0])
            start = None
    return 0, best[0], mask.width, best[1]


def border_figure(picture, mask):
    """Mean step between vertical neighbours where the mask changes, over the mean step
    inside the regions."""
    p = np.asarray(picture, dtype=np.float64)
    m = np.asarray(mask, dtype=np.float64) / 255
    step = np.abs(np.diff(p, axis=0)).mean(-1)
    dm = np.abs(np.diff(m, axis=0))
    edge = dm > 0.2
    inside = (m[:-1] > 0.98) & (m[1:] > 0.98) | (m[:-1] < 0.02) & (m[1:] < 0.02)
    return float(step[edge].mean() / step[inside].mean()) if edge.any() else None


def _photo_and_mask(case, out):
    mask = Image.open(out / ('%s_mask.png' % case[0]))
    photo = Image.open(case[1] / (case[0] + '.jpg')).convert('RGB').resize(mask.size)
    return photo, mask


def run(method, photo, paintings, mask, side):
    from nst_core import stylize
    kw = dict(method=method, size=side, seed=0)
    t = time.perf_counter()
    regions = stylize(photo, paintings, style_masks=[mask, Image.eval(mask, lambda v: 255 - v)],
                      **kw)
    t_regions = time.perf_counter() - t
    t = time.perf_counter()
    singles = [stylize(photo, [p], **kw) for p in paintings]
    t_naive = time.perf_counter() - t
    return regions, composite(*singles, mask), t_regions, t_naive


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--methods', nargs='+', default=['quality', 'fast'])
    ap.add_argument('--side', type=int, default=512)
    args = ap.parse_args(argv)
    from judging import judge
    OUT.mkdir(parents=True, exist_ok=True)
    rows, results = [], []
    for name, folder, cloud, sky, rest in CASES:
        photo = Image.open(folder / (name + '.jpg')).convert('RGB')
        photo.thumbnail((args.side, args.side), Image.LANCZOS)
        mask = sky_mask(photo, cloud)
        mask.save(OUT / ('%s_mask.png' % name))
        paths = {k: (ROOT / 'samples' / (k + '.jpg')) for k in (sky, rest)}
        paintings = [Image.open(paths[k]).convert('RGB') for k in (sky, rest)]
        crop = {'sky': band(mask, True), 'rest': band(mask, False)}
        for method in args.methods:
            regions, naive, t_r, t_n = run(method, photo, paintings, mask, args.side)
            result = dict(case=name, method=method, seconds_regions=t_r, seconds_naive=t_n,
                          border_photo=border_figure(photo, mask))
            for way, pic in (('regions', regions), ('naive', naive)):
                path = OUT / ('%s_%s_%s.png' % (name, method, way))
                pic.save(path)
                result['border_' + way] = border_figure(pic, mask)
                for region, painting in (('sky', sky), ('rest', rest)):
                    box = crop[region]
                    for what, img in (('content', photo), ('output', pic)):
                        img.crop(box).save(OUT / ('%s_%s_%s_%s_%s.png'
                                                  % (name, method, way, region, what)))
                    rows.append(dict(content=str(OUT / ('%s_%s_%s_%s_content.png' % (
                        name, method, way, region))), style=str(paths[painting]),
                        output=str(OUT / ('%s_%s_%s_%s_output.png' % (
                            name, method, way, region))), key=(name, method, way, region)))
            results.append(result)
            print('%s %s: regions %.1f s, naive %.1f s' % (name, method, t_r, t_n), flush=True)
    judged = judge(rows, OUT)
    print('\n%-9s %-8s %-8s %-5s %9s %9s %7s %7s' % ('photo', 'method', 'way', 'where',
                                                     'emb', 'emb grey', 'edge F', 'border'))
    print('(border: the photo itself %s)' % ', '.join(
        '%s %.2f' % (c[0], border_figure(*_photo_and_mask(c, OUT))) for c in CASES))
    for r in rows:
        name, method, way, region = r['key']
        res = next(x for x in results if x['case'] == name and x['method'] == method)
        res.setdefault(way, {})[region] = {k: r.get(k) for k in (
            'style_embed_ratio', 'style_embed_ratio_gray', 'edge_f')}
        if judged:
            print('%-9s %-8s %-8s %-5s %9.3f %9.3f %7.3f %7.2f' % (
                name, method, way, region, r['style_embed_ratio'],
                r['style_embed_ratio_gray'], r['edge_f'], res['border_' + way]))
    for res in results:
        print('%s %s: time regions / naive = %.2f' % (
            res['case'], res['method'], res['seconds_regions'] / res['seconds_naive']))
    (OUT / 'results.json').write_text(json.dumps(results, indent=1))


if __name__ == '__main__':
    main()
