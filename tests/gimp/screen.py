# Screen helpers for the GUI test, run with the chroot's python3 on the Xvfb display.
#   screen.py grab OUT.png [x,y,w,h]          screenshot (the whole screen or a box)
#   screen.py cancel-button BEFORE.png DURING.png
#       prints "x y": the centre of the status bar's Cancel button, which GIMP shows only
#       while a progress runs; found as the rightmost block of pixels that changed in the
#       lowest band of change (the image window's status bar).
import sys


def grab(path, box=None):
    import gi
    gi.require_version('Gdk', '3.0')
    from gi.repository import Gdk
    root = Gdk.get_default_root_window()
    x, y, w, h = box or (0, 0, root.get_width(), root.get_height())
    Gdk.pixbuf_get_from_window(root, x, y, w, h).savev(path, 'png', [], [])


def runs(flags, gap):
    """[start, end) runs of True in flags, joining runs separated by fewer than gap Falses."""
    out = []
    for i, on in enumerate(flags):
        if on:
            if out and i - out[-1][1] < gap:
                out[-1][1] = i + 1
            else:
                out.append([i, i + 1])
    return out


def cancel_button(before, during):
    from PIL import Image, ImageChops
    a = Image.open(before).convert('L')
    b = Image.open(during).convert('L')
    changed = ImageChops.difference(a, b).point(lambda v: 255 if v > 30 else 0)
    w, h = changed.size
    px = changed.load()
    rows = [any(px[x, y] for x in range(w)) for y in range(h)]
    bands = runs(rows, 6)
    if not bands:
        raise SystemExit('nothing changed on the screen: no progress is showing')
    y0, y1 = bands[-1]                       # the lowest band: the status bar
    cols = [any(px[x, y] for y in range(y0, y1)) for x in range(w)]
    x0, x1 = runs(cols, 12)[-1]              # its rightmost block: the Cancel button
    print((x0 + x1) // 2, (y0 + y1) // 2)


if __name__ == '__main__':
    if sys.argv[1] == 'grab':
        grab(sys.argv[2], tuple(int(v) for v in sys.argv[3].split(',')) if len(sys.argv) > 3
             else None)
    elif sys.argv[1] == 'cancel-button':
        cancel_button(sys.argv[2], sys.argv[3])
