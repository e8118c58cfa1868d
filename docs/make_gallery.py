"""Render the README's gallery from samples/ (public-domain, CC0 and CC BY pictures only).

    python docs/make_gallery.py [--force]   # writes docs/img/gallery/*.jpg, prints Markdown

Pictures already there are kept unless --force. The camera-sized photos are shown whole
(reduced) and in crops at 100 %: the picture made at 512 px and enlarged to the photo's size
(what GIMP got before issue 20) beside the picture made at the photo's own size.
"""
import sys
import time
from pathlib import Path

from PIL import Image

import nst_core

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / 'samples'
OUT = ROOT / 'docs' / 'img' / 'gallery'

# (name, photo, styles, options)
ENTRIES = [
    ('chelsea_starry', 'chelsea.jpg', ['starry_night.jpg'], {}),
    ('coffee_scream', 'coffee.jpg', ['the_scream.jpg'], {}),
    ('astronaut_shipwreck', 'astronaut.jpg', ['shipwreck.jpg'], {}),
    ('chelsea_starry_colours', 'chelsea.jpg', ['starry_night.jpg'],
     {'preserve_colors': 'luminance'}),
    ('coffee_starry_scream', 'coffee.jpg', ['starry_night.jpg', 'the_scream.jpg'],
     {'style_weights': [0.5, 0.5]}),
    ('chelsea_starry_best', 'chelsea.jpg', ['starry_night.jpg'], {'preset': 'best'}),
    ('astronaut_shipwreck_best', 'astronaut.jpg', ['shipwreck.jpg'], {'preset': 'best'}),
    ('chelsea_starry_fast', 'chelsea.jpg', ['starry_night.jpg'], {'method': 'fast', 'size': 0}),
    ('coffee_scream_fast', 'coffee.jpg', ['the_scream.jpg'], {'method': 'fast', 'size': 0}),
]

# (name, photo, style, options, crops at 100 %: (left, top) of CROP-sized boxes)
FULL_SIZE = [
    ('picos_starry', 'picos.jpg', 'starry_night.jpg', {}, [(1300, 450), (700, 1500)]),
    ('picos_starry_fast', 'picos.jpg', 'starry_night.jpg', {'method': 'fast'},
     [(1300, 450), (700, 1500)]),
    ('aitzgorri_scream', 'aitzgorri.jpg', 'the_scream.jpg', {}, [(1500, 200), (2100, 850)]),
]
# (name, photo, styles, style masks (a file in samples/ or 'rest'), options): shown reduced,
# with its mask beside it
REGIONS = [
    ('picos_sky_regions', 'picos.jpg', ['starry_night.jpg', 'the_scream.jpg'],
     ['picos_sky.png', 'rest'], {'size': 1024}),
]
CROP = (480, 320)
WHOLE = 1024


def full_size(force):
    """The camera-sized entries: whole pictures and their crops at 100 %."""
    rows = []
    for name, photo, style, options, boxes in FULL_SIZE:
        whole, crops = OUT / (name + '.jpg'), OUT / (name + '_100.jpg')
        if force or not (whole.exists() and crops.exists()):
            content, painting = Image.open(SAMPLES / photo), [Image.open(SAMPLES / style)]
            t0 = time.perf_counter()
            large = nst_core.stylize(content, painting, **options)
            seconds = time.perf_counter() - t0
            small = nst_core.stylize(content, painting, **dict(options, size=512))
            small = small.resize(large.size, Image.BICUBIC)
            print(name, '%.1f s at %dx%d' % ((seconds,) + large.size), flush=True)
            reduced = large.copy()
            reduced.thumbnail((WHOLE, WHOLE), Image.LANCZOS)
            reduced.save(whole, quality=88)
            w, h = CROP
            sheet = Image.new('RGB', (2 * w + 8, len(boxes) * (h + 8) - 8), 'white')
            for row, (x, y) in enumerate(boxes):
                for col, picture in enumerate((small, large)):
                    sheet.paste(picture.crop((x, y, x + w, y + h)), (col * (w + 8), row * (h + 8)))
            sheet.save(crops, quality=92)
        label = ', '.join('%s=%s' % kv for kv in options.items()) or 'defaults'
        rows.append('| %s | %s | ![%s](docs/img/gallery/%s.jpg) ![%s at 100 %%](docs/img/gallery/%s_100.jpg) | %s |'
                    % (photo, style, name, name, name, name, label))
    return rows


def by_region(force):
    """The entries painted by region: the picture, and its mask beside it (reduced)."""
    rows = []
    for name, photo, styles, masks, options in REGIONS:
        target = OUT / (name + '.jpg')
        if force or not target.exists():
            content = Image.open(SAMPLES / photo)
            masks_in = [m if m == 'rest' else Image.open(SAMPLES / m) for m in masks]
            t0 = time.perf_counter()
            out = nst_core.stylize(content, [Image.open(SAMPLES / s) for s in styles],
                                   style_masks=masks_in, **options)
            print(name, '%.1f s' % (time.perf_counter() - t0), flush=True)
            out.thumbnail((WHOLE, WHOLE), Image.LANCZOS)
            mask = next(m for m in masks_in if m != 'rest').convert('RGB')
            mask = mask.resize((out.width // 4, out.height // 4), Image.LANCZOS)
            sheet = Image.new('RGB', (out.width + 8 + mask.width, out.height), (96, 96, 96))
            sheet.paste(out, (0, 0))
            sheet.paste(mask, (out.width + 8, 0))
            sheet.save(target, quality=88)
        label = ', '.join('%s=%s' % kv for kv in options.items())
        rows.append('| %s | %s by %s | ![%s](docs/img/gallery/%s.jpg) | %s |'
                    % (photo, ' + '.join(styles), ' + '.join(masks), name, name, label))
    return rows


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, photo, styles, options in ENTRIES:
        target = OUT / (name + '.jpg')
        if '--force' in sys.argv or not target.exists():
            t0 = time.perf_counter()
            out = nst_core.stylize(Image.open(SAMPLES / photo),
                                   [Image.open(SAMPLES / s) for s in styles], **options)
            out.save(target, quality=88)
            print(name, '%.1f s' % (time.perf_counter() - t0), flush=True)
        label = ', '.join('%s=%s' % kv for kv in options.items()) or 'defaults'
        rows.append('| %s | %s | ![%s](docs/img/gallery/%s.jpg) | %s |'
                    % (photo, ' + '.join(styles), name, name, label))
    rows += by_region('--force' in sys.argv)
    rows += full_size('--force' in sys.argv)
    print('\n| photo | style | result | options |\n| --- | --- | --- | --- |')
    print('\n'.join(rows))


if __name__ == '__main__':
    main()
