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
    """Mean step between vertical neighbours on the mask's edge (its values between 0.05 and
    0.95), over the mean step inside the regions."""
    p = np.asarray(picture, dtype=np.float64)
    m = np.asarray(mask, dtype=np.float64) / 255
    step = np.abs(np.diff(p, axis=0)).mean(-1)
    between = (m > 0.05) & (m < 0.95)          # the mask's edge, however soft
    edge = between[:-1] | between[1:]
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
    ap.add_argument('--fast-norm-mix', action='store_true',
                    help='Fast only: also the styles mixed inside the network (see '
                         'fast_norm_mix), with the sky mask as it is and feathered 48 px')
    args = ap.parse_args(argv)
    if args.fast_norm_mix:
        return norm_mix_main(args)
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



# --- Fast: the alternative to mixing finished pictures, measured (--fast-norm-mix) --------

def fast_norm_mix(photo, paintings, mask):
    """Fast with the styles mixed inside the network instead: every conditional instance
    norm's scale and shift taken per pixel as the shares' mix of each style's (they are
    linear in the style vector, so this is the network run with a per-pixel style vector),
    untiled, at every phase as the product paints; a measurement only, made here by replacing
    StyleNorm.forward and fast.render for the run."""
    import torch
    from torch.nn import functional as F
    from nst_core import fast, imageio, regions
    from nst_core.canvas import canvas_size
    from nst_core.models import arbitrary_style as A
    net = fast.load_network()
    content = imageio.to_tensor(photo)
    H, W = content.shape[-2:]
    with torch.inference_mode():
        vecs = [fast.style_vector(net, imageio.to_tensor(p)) for p in paintings]
        share = regions.shares([regions.to_tensor(mask, (W, H), 'cpu'), regions.REST],
                               [1.0, 1.0], (H, W))
        small = fast.resize(content, canvas_size(H, W, 1.0)).clamp(0, 1)
        h, w = small.shape[-2:]
        canvas_share = regions.resize(share, (h, w))
        field = {}
        orig, orig_render = A.StyleNorm.forward, fast.render

        def render(net_, canvas, vec, phase=(0, 0), tile_size=2048, report=None):
            # the shares framed as the canvas is at this phase
            field['share'] = fast.mirror_pad(canvas_share, *fast.frame(h, w, phase))
            return orig_render(net_, canvas, vec, phase, 10 ** 6, report)

        def forward(self, x, style, stats=None, region=None):
            if not isinstance(style, list):
                return orig(self, x, style, stats, region)
            mean, var = A.instance_stats(A.within(x, region)) if stats is None else stats
            m = F.interpolate(field['share'], size=x.shape[-2:], mode='bilinear',
                              align_corners=False)
            gamma = sum(m[k:k + 1] * self.gamma(v)[..., None, None] for k, v in enumerate(style))
            beta = sum(m[k:k + 1] * self.beta(v)[..., None, None] for k, v in enumerate(style))
            scale = gamma * torch.rsqrt(var + A.EPS)
            return x * scale + (beta - mean * scale)
        A.StyleNorm.forward, fast.render = forward, render
        try:
            canvas = fast.paint_canvas(net, small, vecs, (H, W), seed=0)
        finally:
            A.StyleNorm.forward, fast.render = orig, orig_render
        painted = fast.detail.enlarge(content, small, canvas)
    return imageio.to_pil(painted)


def norm_mix_main(args):
    """Fast's two ways of painting by region, side by side: mixing the finished pictures (the
    product's) and mixing inside the network; the mask as made and feathered 48 px."""
    from judging import judge
    from nst_core import stylize
    OUT.mkdir(parents=True, exist_ok=True)
    rows, seen = [], []
    for name, folder, cloud, sky, rest in CASES:
        photo = Image.open(folder / (name + '.jpg')).convert('RGB')
        photo.thumbnail((args.side, args.side), Image.LANCZOS)
        paths = [ROOT / 'samples' / (k + '.jpg') for k in (sky, rest)]
        paintings = [Image.open(p).convert('RGB') for p in paths]
        for soft in (0, 48):
            mask = sky_mask(photo, cloud)
            if soft:
                mask = mask.filter(ImageFilter.GaussianBlur(soft / 2))
            crop = {0: band(mask, True), 1: band(mask, False)}
            pictures = {
                'pictures': stylize(photo, paintings, method='fast', size=args.side,
                                    style_masks=[mask, 'rest']),
                'network': fast_norm_mix(photo, paintings, mask)}
            for way, pic in pictures.items():
                stem = '%s_soft%d_%s' % (name, soft, way)
                pic.save(OUT / (stem + '.png'))
                seen.append((stem, border_figure(pic, mask)))
                for i, path in enumerate(paths):
                    for what, img in (('content', photo), ('output', pic)):
                        img.crop(crop[i]).save(OUT / ('%s_%d_%s.png' % (stem, i, what)))
                    rows.append(dict(content=str(OUT / ('%s_%d_content.png' % (stem, i))),
                                     style=str(path), key=(stem, i),
                                     output=str(OUT / ('%s_%d_output.png' % (stem, i)))))
    if judge(rows, OUT):
        print('%-32s %-5s %7s %9s %7s' % ('picture', 'where', 'emb', 'emb grey', 'edge F'))
        for r in rows:
            print('%-32s %-5s %7.3f %9.3f %7.3f' % (r['key'][0], ('sky', 'rest')[r['key'][1]],
                                                    r['style_embed_ratio'],
                                                    r['style_embed_ratio_gray'], r['edge_f']))
    for stem, figure in seen:
        print('%s: border %.2f' % (stem, figure))


if __name__ == '__main__':
    main()
