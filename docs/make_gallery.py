"""Render the README's gallery from samples/ (public-domain and CC0 pictures only).

    python docs/make_gallery.py [--force]   # writes docs/img/gallery/*.jpg, prints Markdown

Pictures already there are kept unless --force.
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
    ('chelsea_starry_fast', 'chelsea.jpg', ['starry_night.jpg'], {'method': 'fast', 'size': 0}),
    ('coffee_scream_fast', 'coffee.jpg', ['the_scream.jpg'], {'method': 'fast', 'size': 0}),
]


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
    print('\n| photo | style | result | options |\n| --- | --- | --- | --- |')
    print('\n'.join(rows))


if __name__ == '__main__':
    main()
