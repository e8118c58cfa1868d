"""Render the README's gallery from samples/ (public-domain and CC0 pictures only).

    python docs/make_gallery.py        # writes docs/img/gallery/*.jpg, prints the Markdown
"""
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


def thumb(name, size=160):
    img = Image.open(SAMPLES / name).convert('RGB')
    img.thumbnail((size, size))
    return img


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, photo, styles, options in ENTRIES:
        t0 = time.perf_counter()
        out = nst_core.stylize(Image.open(SAMPLES / photo), [Image.open(SAMPLES / s)
                                                              for s in styles], **options)
        seconds = time.perf_counter() - t0
        out.save(OUT / (name + '.jpg'), quality=88)
        label = ', '.join('%s=%s' % kv for kv in options.items()) or 'defaults'
        rows.append('| %s | %s | ![%s](docs/img/gallery/%s.jpg) | %s |'
                    % (photo, ' + '.join(styles), name, name, label))
        print(name, '%.1f s' % seconds, flush=True)
    print('\n| photo | style | result | options |\n| --- | --- | --- | --- |')
    print('\n'.join(rows))


if __name__ == '__main__':
    main()
