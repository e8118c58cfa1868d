"""Where each style paints (issue 24): the dialog's regions checked and made into the job's
style masks (docs/protocol.md, "style_masks": one byte a pixel, white = this style paints).

A style paints everywhere (no mask: the job is as before regions existed), in a channel (the
channel's pixels over the photo layer), or everywhere else: what the other styles' channels
leave uncovered, so that with two styles and one channel the second one needs no channel of
its own. With one other channel that is its inverse; with more, 255 minus their sum (at
least 0), the rule of the engine's own 'rest' mask (nst_core.regions): where the channels
overlap, their styles blend by their weights and the rest stays out. Standard library only:
the GIMP side (reading a channel) is in pixels.py, the words in messages.py;
tests/test_gimp.py tests this module.
"""
from collections import namedtuple

from options import EVERYWHERE, IN_CHANNEL, REST

INVERT = bytes(range(255, -1, -1))
# slot: the style's number in the dialog (1..3); kind: EVERYWHERE, IN_CHANNEL or REST;
# channel: the channel (IN_CHANNEL); others: for REST, the plan's indices it is the rest of
Region = namedtuple('Region', 'slot kind channel others')


class RegionError(Exception):
    """A region that cannot be painted. problem: 'no_channel' (In the channel, none chosen),
    'rest_of_nothing' (Everywhere else, but no other style has a channel) or
    'rest_of_everything' (Everywhere else, but style `other` paints everywhere)."""

    def __init__(self, problem, slot, other=None):
        super().__init__(problem, slot, other)
        self.problem, self.slot, self.other = problem, slot, other


def plan(regions):
    """[Region] from [(slot, region, channel)] (options.regions), or RegionError for the first
    region that cannot be painted. Styles whose region is "Everywhere else" are the rest of
    the others that are not (the rest of a rest would go round in circles)."""
    out = []
    for i, (slot, kind, channel) in enumerate(regions):
        if kind == IN_CHANNEL:
            if channel is None:
                raise RegionError('no_channel', slot)
            out.append(Region(slot, IN_CHANNEL, channel, ()))
        elif kind == REST:
            others = [j for j, other in enumerate(regions) if j != i and other[1] != REST]
            everywhere = [regions[j][0] for j in others if regions[j][1] != IN_CHANNEL]
            if everywhere:
                raise RegionError('rest_of_everything', slot, everywhere[0])
            if not others:
                raise RegionError('rest_of_nothing', slot)
            out.append(Region(slot, REST, None, tuple(others)))
        else:
            out.append(Region(slot, EVERYWHERE, None, ()))
    return out


def masks(regions, read):
    """The job's style masks for a plan: per style the mask's bytes, None where it paints
    everywhere; None in all when every style does (the job then holds no masks).
    read(channel): the channel's bytes over the photo."""
    if all(r.kind == EVERYWHERE for r in regions):
        return None
    out = [read(r.channel) if r.kind == IN_CHANNEL else None for r in regions]
    for i, r in enumerate(regions):
        if r.kind == REST:
            out[i] = rest([out[j] for j in r.others])
    return out


def rest(others):
    """What the masks leave uncovered, pixel by pixel: 255 minus their sum, at least 0."""
    if len(others) == 1:
        return others[0].translate(INVERT)
    return bytes(map(lambda *values: max(0, 255 - sum(values)), *others))


def empty(mask):
    return not mask.strip(b'\0')


def nowhere(regions, style_masks):
    """The first Region whose mask is black over all of the photo (its style would paint
    nowhere: the engine refuses that), else None."""
    for r, mask in zip(regions, style_masks or ()):
        if mask is not None and empty(mask):
            return r
    return None
