"""Mask files from the shell: `--style-masks sky.png -` and `--painting-masks`.

The engine takes masks as greyscale images (regions.py) and names them by number; here they
are files, so every error names the file, and the picture it does not fit, with both sizes.
A mask is read as its numbers, never colour-managed: 255 means "here" whatever profile the
file carries. Greyscale PNG/JPEG (also 16-bit and float TIFF) are taken as they are; an RGB
or RGBA file whose red, green and blue are equal everywhere is grey saved in colour (many
editors export that way) and is read as grey, its alpha ignored (a mask says where by its
grey, not by transparency).
"""
from typing import List, Optional, Sequence

import numpy as np
from PIL import Image

from .imageio import open_image
from .regions import GREY_MODES, MaskError

EVERYWHERE = '-'
REST = 'rest'           # --style-masks: where no other style's mask is (regions.REST)
KINDS = {'style': ('--style-masks', 'style mask', 'photo', 'its style would be painted '
                   'nowhere'),
         'painting': ('--painting-masks', 'painting mask', 'painting', 'there is no '
                      'painting to read')}


class MaskFile:
    """A mask read from a file: .image (PIL, greyscale) and the .path it came from."""

    def __init__(self, path, image):
        self.path, self.image = str(path), image

    @property
    def size(self):
        return self.image.size


def count_check(style_masks, painting_masks, styles, method):
    """MaskError unless there is at most one mask per style (a trained network: one style
    mask, no painting mask). Run on the names, before any file is read."""
    if method == 'trained' and not styles:
        if painting_masks and any(p != EVERYWHERE for p in painting_masks):
            raise MaskError('--painting-masks: a trained network is its own style: it has no '
                            'painting to take a part of')
        room, of = 1, 'the trained network (one mask: where it paints)'
    else:
        room, of = len(styles), '%d style%s' % (len(styles), '' if len(styles) == 1 else 's')
    for flag, masks in (('--style-masks', style_masks), ('--painting-masks', painting_masks)):
        if masks and len(masks) > room:
            raise MaskError("%s: %d masks given for %s: give at most one per style, in the "
                            "styles' order ('%s' for a style without one)"
                            % (flag, len(masks), of, EVERYWHERE))


def read_all(paths: Optional[Sequence[str]], kind: str) -> Optional[List[Optional[MaskFile]]]:
    """The mask files named on the command line ('-' = none for that style); None when the
    option was not given or names none."""
    if not paths:
        return None
    masks = [None if p == EVERYWHERE else p if p == REST and kind == 'style'
             else read(p, kind) for p in paths]
    return masks if any(m is not None for m in masks) else None


def read(path, kind: str) -> MaskFile:
    """One mask file, greyscale, not black everywhere; ImageError / MaskError naming it."""
    what, nowhere = KINDS[kind][1], KINDS[kind][3]
    image = grey(open_image(path, as_stored=True), '%s %s' % (what, path))
    if not _array(image).any():
        raise MaskError('%s %s is black everywhere: %s (white = here)' % (what, path, nowhere))
    return MaskFile(path, image)


def grey(image: Image.Image, name: str) -> Image.Image:
    """A greyscale image the engine takes (regions.GREY_MODES): grey modes as they are, grey
    with alpha and colour whose channels are equal as 'L'; MaskError for colour."""
    if image.mode in GREY_MODES:
        return image
    if image.mode in ('LA', 'La'):
        return image.getchannel('L')
    if image.mode == 'PA' or image.mode == 'P':
        image = image.convert('RGBA')
    rgb = np.asarray(image.convert('RGB'))
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    if not (np.array_equal(r, g) and np.array_equal(g, b)):
        raise MaskError('%s is not greyscale (its red, green and blue differ): a mask is grey, '
                        'white where it applies and black where not' % name)
    return Image.fromarray(np.ascontiguousarray(r), 'L')


def _array(image):
    from .regions import to_array
    return to_array(image)


def fit_check(masks: Optional[Sequence[Optional[MaskFile]]], pictures: Sequence, kind: str):
    """MaskError naming the mask file, the picture and both sizes unless each mask has its
    picture's size. pictures: per mask (name, (w, h)); for style masks, the photo every time."""
    if masks is None:
        return
    what, of = KINDS[kind][1], KINDS[kind][2]
    for mask, (name, size) in zip(masks, pictures):
        if isinstance(mask, MaskFile) and tuple(mask.size) != tuple(size):
            raise MaskError('%s %s is %dx%d but the %s %s is %dx%d: a %s must have the size '
                            'of its %s' % (what, mask.path, *mask.size, of, name, *size, what,
                                           of))


def images(masks: Optional[Sequence[Optional[MaskFile]]]):
    """What stylize() takes: the images, None for everywhere; None for no masks."""
    return None if masks is None else [m.image if isinstance(m, MaskFile) else m
                                       for m in masks]
