# Screen helpers for the GUI test, run with the chroot's python3 on the Xvfb display.
#   screen.py grab OUT.png [x,y,w,h]          screenshot (the whole screen or a box)
#   screen.py cancel-button BEFORE.png DURING.png
#       prints "x y": the centre of the status bar's Cancel button, which GIMP shows only
#       while a progress runs; found as the rightmost block of pixels that changed in the
#       lowest band of change (the image window's status bar).
#   screen.py serve OUTDIR GIMP_PID
#       the hands of gui_test.py (which runs inside GIMP and cannot press keys): executes the
#       requests it leaves in OUTDIR/req/ (000.json, 001.json, ... in order) with xdotool and
#       screenshots, writes OUTDIR/req/NNN.done (JSON: ok, what happened), until GIMP exits.
#       A request is a list of steps, each a one-key object:
#         {"wait_log": REGEX}       wait until a line of the plug-in's hook log matches
#         {"find": REGEX}           wait for a visible window with this title (the current one)
#         {"gone": REGEX}           wait until no visible window has this title
#         {"key": "ctrl+z"}         keys to the current window;  {"type": "text"}
#         {"plain_key": "F1"}       one key, no modifier, to the current window (XTest)
#         {"sleep": S}              {"grab": "name.png"} the current window, into OUTDIR
#         {"grab_screen": "name.png"}
#         {"click_cancel": ["before.png", "during.png"]}   the status bar's Cancel button
#         {"geometry": "label"}     the current window's "label x y width height" into the log
#         {"resize": [W, H]}        ask for the current window at W x H (as a user drags its
#                                   corner; Xvfb has no window manager to refuse it)
#         {"windows": "label"}      every visible window's title and geometry into the log
#         {"mark_windows": true}    remember the visible windows; then
#         {"new_windows": "label"}  "label 'title' x y w h" into the log for each visible
#                                   window that was not there at the mark (what the keys
#                                   since the mark opened, not what an earlier step left)
#         {"close_new": true}       Escape to each of those; "closed 'title'" or "NOT closed
#                                   by Escape: 'title'" (after 5 s) into the log
#       A wait_log with "or_new_window": true ends too when a window not there at the mark
#       appears.
#       "timeout" (seconds, default 60) may accompany wait_log / find / gone; a wait_log with
#       "optional": true that times out lets the request go on (a plug-in that does not log
#       what is waited for still gets its keys); so does an optional find, whose keys are
#       then dropped.
import json
import os
import re
import subprocess
import sys
import time


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
    return (x0 + x1) // 2, (y0 + y1) // 2


def plain_key(name):
    """Press and release one key with no modifier through XTest. forky's xdotool (3.20160805)
    sends "key F1" as Alt+F1: it picks the level of F1 that Alt reaches on the keycode
    (F1 F1 F1 F1 Switch_VT_1), and GIMP rightly takes Alt+F1 for no help key."""
    import ctypes
    x11, xtst = ctypes.CDLL('libX11.so.6'), ctypes.CDLL('libXtst.so.6')
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XStringToKeysym.restype = ctypes.c_ulong
    x11.XStringToKeysym.argtypes = [ctypes.c_char_p]
    x11.XKeysymToKeycode.restype = ctypes.c_ubyte
    x11.XKeysymToKeycode.argtypes = [ctypes.c_void_p, ctypes.c_ulong]
    xtst.XTestFakeKeyEvent.argtypes = [ctypes.c_void_p, ctypes.c_uint, ctypes.c_int,
                                       ctypes.c_ulong]
    x11.XFlush.argtypes = x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    display = x11.XOpenDisplay(None)
    if not display:
        raise RuntimeError('cannot open the display')
    try:
        code = x11.XKeysymToKeycode(display, x11.XStringToKeysym(name.encode()))
        if not code:
            raise RuntimeError('no key for %r' % name)
        xtst.XTestFakeKeyEvent(display, code, 1, 0)
        xtst.XTestFakeKeyEvent(display, code, 0, 0)
        x11.XFlush(display)
    finally:
        x11.XCloseDisplay(display)


# ---------------------------------------------------------------- serve

def xdo(*args):
    return subprocess.run(['xdotool'] + [str(a) for a in args], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, universal_newlines=True).stdout.split()


def windows(title):
    return xdo('search', '--onlyvisible', '--name', title)


def window_name(win):
    return subprocess.run(['xdotool', 'getwindowname', win], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, universal_newlines=True).stdout.strip()


def geometry(win):
    out = dict(line.split('=', 1) for line in
               subprocess.run(['xdotool', 'getwindowgeometry', '--shell', win],
                              stdout=subprocess.PIPE, universal_newlines=True).stdout.split())
    return int(out['X']), int(out['Y']), int(out['WIDTH']), int(out['HEIGHT'])


class Gone(Exception):
    pass


def until(check, seconds, alive):
    deadline = time.time() + seconds
    while time.time() < deadline:
        found = check()
        if found:
            return found
        if not alive():
            raise Gone()
        time.sleep(0.1)
    return None


def hook_lines(out):
    try:
        with open(os.path.join(out, 'hook', 'plugin.log'), encoding='utf-8') as f:
            return f.read().splitlines()
    except OSError:
        return []


def serve(out, gimp_pid):
    folder = os.path.join(out, 'req')
    os.makedirs(folder, exist_ok=True)

    def alive():
        try:
            os.kill(gimp_pid, 0)
        except OSError:
            return False
        try:
            with open('/proc/%d/stat' % gimp_pid) as f:
                return f.read().split(') ', 1)[1][0] != 'Z'
        except OSError:
            return True

    n = 0
    while alive():
        path = os.path.join(folder, '%03d.json' % n)
        if not os.path.exists(path):
            time.sleep(0.1)
            continue
        with open(path) as f:
            steps = json.load(f)
        report = {'ok': True, 'log': []}
        win = None
        marked = None
        try:
            for step in steps:
                timeout = step.get('timeout', 60)
                if 'wait_log' in step:
                    pattern = re.compile(step['wait_log'])
                    if step.get('or_new_window') and marked is None:
                        raise RuntimeError('no mark_windows before %s' % json.dumps(step))
                    found = until(lambda: [line for line in hook_lines(out)
                                           if pattern.search(line)] or (
                        step.get('or_new_window') and set(windows('.')) - marked),
                        timeout, alive)
                    if not found and step.get('optional'):
                        report['log'].append('no hook log line matched %r: going on'
                                             % step['wait_log'])
                        continue
                    if not found:
                        raise RuntimeError('no hook log line matched %r' % step['wait_log'])
                elif 'find' in step:
                    ids = until(lambda: windows(step['find']), timeout, alive)
                    if not ids and step.get('optional'):
                        # the keys that follow, meant for that window, go nowhere
                        report['log'].append('no window %r: going on' % step['find'])
                        win = None
                        continue
                    if not ids:
                        raise RuntimeError('no window %r' % step['find'])
                    win = ids[0]
                elif 'gone' in step:
                    if not until(lambda: not windows(step['gone']), timeout, alive):
                        raise RuntimeError('window %r still there' % step['gone'])
                elif 'key' in step and win is None:
                    report['log'].append('no window for %r' % step['key'])
                elif 'key' in step:
                    xdo('windowfocus', '--sync', win, 'key', '--clearmodifiers', step['key'])
                elif 'plain_key' in step:
                    xdo('windowfocus', '--sync', win)
                    plain_key(step['plain_key'])
                elif 'type' in step:
                    xdo('windowfocus', '--sync', win, 'type', '--delay', 50, step['type'])
                elif 'sleep' in step:
                    time.sleep(step['sleep'])
                elif 'grab' in step:
                    grab(os.path.join(out, step['grab']), geometry(win))
                elif 'grab_screen' in step:
                    grab(os.path.join(out, step['grab_screen']))
                elif 'geometry' in step:
                    report['log'].append('%s %d %d %d %d' % ((step['geometry'],) +
                                                             geometry(win)))
                elif 'resize' in step:
                    xdo('windowsize', win, *step['resize'])
                elif 'windows' in step:
                    for w in windows('.'):
                        report['log'].append('%s %r %d %d %d %d' % (
                            (step['windows'], window_name(w)) + geometry(w)))
                elif 'mark_windows' in step:
                    marked = set(windows('.'))
                elif 'new_windows' in step or 'close_new' in step:
                    if marked is None:
                        raise RuntimeError('no mark_windows before %s' % json.dumps(step))
                    new = [w for w in windows('.') if w not in marked]
                    for w in new:
                        title = window_name(w)
                        if 'new_windows' in step:
                            try:
                                box = geometry(w)
                            except KeyError:     # it went while being looked at
                                box = (-1, -1, -1, -1)
                            report['log'].append('%s %r %d %d %d %d' % (
                                (step['new_windows'], title) + box))
                            continue
                        xdo('windowfocus', '--sync', w, 'key', '--clearmodifiers', 'Escape')
                        # not an error that ends the request: the steps after it (the
                        # dialog's Escape) must still come, or GIMP waits for ever
                        report['log'].append('%s %r' % (
                            'closed' if until(lambda: w not in windows('.'), 5, alive)
                            else 'NOT closed by Escape:', title))
                elif 'click_cancel' in step:
                    before, during = (os.path.join(out, p) for p in step['click_cancel'])
                    x, y = cancel_button(before, during)
                    xdo('mousemove', x, y, 'click', 1)
                    report['log'].append('clicked Cancel at %d %d' % (x, y))
                report['log'].append('done %s' % json.dumps(step))
        except Gone:
            report.update(ok=False, error='GIMP exited')
        except (RuntimeError, OSError, SystemExit, KeyError, ValueError) as e:
            report.update(ok=False, error=str(e))
        print('request %03d: %s' % (n, json.dumps(report)), flush=True)
        with open(path[:-5] + '.part', 'w') as f:
            json.dump(report, f)
        os.replace(path[:-5] + '.part', path[:-5] + '.done')
        n += 1


if __name__ == '__main__':
    if sys.argv[1] == 'grab':
        grab(sys.argv[2], tuple(int(v) for v in sys.argv[3].split(',')) if len(sys.argv) > 3
             else None)
    elif sys.argv[1] == 'cancel-button':
        print(*cancel_button(sys.argv[2], sys.argv[3]))
    elif sys.argv[1] == 'serve':
        serve(sys.argv[2], int(sys.argv[3]))
