"""`python -m nst_core`: stylize, batch, train, weights, worker and serve from a shell.

The stylize options are generated from stylize()'s signature, so their names, defaults and
choices cannot drift from the library's.
"""
import argparse
import collections.abc
import dataclasses
import json
import sys
import time
import typing

from . import __version__

SKIP = ('callback', 'cancel', 'log', 'style_weights', 'init_image', 'style_masks',
        'painting_masks')


def _flag(name):
    return '--' + name.replace('_', '-')


def _arg_spec(name, param, func=None):
    """argparse keyword arguments for one option of stylize() (or of func: train())."""
    hint = param.annotation
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union:                      # Optional[X] -> X
        hint = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    spec = dict(default=param.default, dest=name)
    allowed = args if origin is typing.Literal else None
    if allowed:
        spec.update(choices=allowed)
    elif hint is bool:
        spec.update(action='store_true')
    elif origin in (collections.abc.Sequence, list, tuple):
        spec.update(nargs='+', type=args[0] if args else str)
    elif hint in (int, float, str):
        spec.update(type=hint)
    doc = _option_docs(func).get(name, '')
    spec['help'] = '%s (default: %s)' % (doc, _show(param.default)) if doc else \
        'default: %s' % _show(param.default)
    return spec


def _show(value):
    if isinstance(value, (list, tuple)):
        return ' '.join(map(str, value))
    return value


def _option_docs(func=None):
    """Each option's description in stylize()'s (or func's) docstring."""
    if func is None:
        from .api import stylize as func
    docs, current = {}, None
    for line in (func.__doc__ or '').splitlines():
        text = line.strip()
        head = text.split(':', 1)
        if len(head) == 2 and all(n.strip().isidentifier() for n in head[0].split(',')):
            for n in head[0].split(','):
                docs[n.strip()] = head[1].strip()
            current = [n.strip() for n in head[0].split(',')]
        elif text and current:
            for n in current:
                docs[n] += ' ' + text
        else:
            current = None
    return {k: v.replace('%', '%%') for k, v in docs.items()}


def _add_stylize(sub):
    p = sub.add_parser('stylize', help='repaint CONTENT in the style of STYLE(s)',
                       description='Repaint CONTENT in the style of one or more STYLE images, '
                       "here or, with --remote, on another machine's engine over SSH (its "
                       'devices, the same picture). Exit status 0: written; 1: failed; 2: bad '
                       'input, device or remote; 3: cancelled (Ctrl+C).')
    p.add_argument('content', help='content image file')
    p.add_argument('style', nargs='*', help='style image file(s) (none for --method trained)')
    p.add_argument('-o', '--output', required=True, help='output image file (PNG, JPEG, ...)')
    p.add_argument('--style-weights', type=float, nargs='+', dest='style_weights',
                   help='blend weight per style (default: equal)')
    _add_mask_options(p, batch=False)
    p.add_argument('--init-image', dest='init_image_path',
                   help="start from this image (implies --init image)")
    p.add_argument('--json', action='store_true',
                   help='print progress as JSON events (the worker protocol) on stdout')
    p.add_argument('--quiet', action='store_true', help='no progress output')
    _add_remote_options(p, many=False)
    _add_options(p)
    p.set_defaults(run=_run_stylize)


def _add_remote_options(p, many):
    p.add_argument('--remote', metavar='ssh://[USER@]HOST[:PORT]/PYTHON',
                   action='append' if many else 'store',
                   help="run on that machine's engine over SSH: PYTHON is the interpreter "
                   'nst_core is installed in there, --device chooses among its devices, its '
                   'engine stays loaded between runs; needs key login (docs/remote.md)' +
                   ('; several --remote spread the photos over the machines, and a machine '
                    'that fails hands its photo to the others' if many else ''))
    p.add_argument('--ssh-command', dest='ssh_command', metavar='"ssh OPTIONS..."',
                   help="the ssh program and options for --remote, e.g. \"ssh -F my_config\" "
                   '(split as a shell splits words, never run through one; default: ssh)')


def _add_mask_options(p, batch):
    """--style-masks and --painting-masks: files here, images for stylize() (maskfiles.py)."""
    photo = 'every photo' if batch else 'the content'
    p.add_argument('--style-masks', nargs='+', metavar='MASK', dest='style_mask_files',
                   help='where each style paints: per style, in their order, a greyscale '
                   'PNG/JPEG of the size of %s, white = this style here, grey blends, '
                   "black = not here; '-' = everywhere; 'rest' = where no other style's mask "
                   'is (sky.png rest: the sky in the first style, the rest in the second). '
                   'Where no mask reaches, the photo stays '
                   'as it is. With --method trained: one, where its network paints%s'
                   % (photo, '. A photo of another size fails, the others go on'
                      if batch else ''))
    p.add_argument('--painting-masks', nargs='+', metavar='MASK', dest='painting_mask_files',
                   help='which part of each painting its style is taken from: per style, in '
                   'their order, a greyscale PNG/JPEG of the size of that painting, white = '
                   "read this part; '-' = all of the painting")


def _masks(args, styles, photo=None):
    """stylize()'s style_masks and painting_masks from the mask files; MaskError or
    ImageError naming the file. styles: the images of args.style; photo: (name, image) the
    style masks must fit (batch: None, checked per photo by _mask_fit)."""
    from . import maskfiles
    style_masks = maskfiles.read_all(args.style_mask_files, 'style')
    painting_masks = maskfiles.read_all(args.painting_mask_files, 'painting')
    maskfiles.fit_check(painting_masks, [(p, s.size) for p, s in zip(args.style, styles)],
                        'painting')
    if photo is not None:
        maskfiles.fit_check(style_masks, [(photo[0], photo[1].size)] * len(style_masks or ()),
                            'style')
    return style_masks, painting_masks


def _count_masks(args):
    """More masks than styles: refused on the names, before any file is read."""
    from . import maskfiles
    maskfiles.count_check(args.style_mask_files, args.painting_mask_files, args.style,
                          args.method)


def _remote_hosts(args):
    """The remote.Host of each --remote (none: run here)."""
    import shlex
    urls = args.remote if isinstance(args.remote, list) else [args.remote] * bool(args.remote)
    ssh = shlex.split(args.ssh_command) if args.ssh_command is not None else None
    if args.ssh_command is not None and not (urls and ssh):
        raise ValueError('--ssh-command needs a program, and --remote to use it')
    from .remote import Host
    return [Host(url, ssh) for url in urls]


def _add_options(p):
    """Every stylize() option as a flag, with its default and choices."""
    from .api import options
    for name, param in options().items():
        if name not in SKIP:
            p.add_argument(_flag(name), **_arg_spec(name, param))


def _run_stylize(args):
    from . import maskfiles
    from .imageio import ImageError, open_image
    from .reporting import Reporter
    from .api import options, stylize
    reporter = Reporter(json_events=args.json, quiet=args.quiet)
    kwargs = {n: getattr(args, n) for n in options() if n not in SKIP}
    kwargs['style_weights'] = args.style_weights
    try:
        _check_output(args.output)
        hosts = _remote_hosts(args)
        if hosts and args.init_image_path:
            raise ValueError('--init-image does not travel to a --remote: use --init with '
                             'content, palette, noise or fast there')
        _count_masks(args)
        content = open_image(args.content)
        styles = [open_image(s) for s in args.style]
        style_masks, painting_masks = _masks(args, styles, (args.content, content))
        kwargs.update(style_masks=maskfiles.images(style_masks),
                      painting_masks=maskfiles.images(painting_masks))
        if args.init_image_path:
            kwargs.update(init='image', init_image=open_image(args.init_image_path))
        paint = hosts[0].stylize if hosts else stylize
        result = paint(content, styles, callback=reporter.progress, log=reporter.log, **kwargs)
        result.save(args.output)
    except (Exception, KeyboardInterrupt) as e:  # noqa: BLE001 - one clear line each
        return _failed(reporter, e, (ImageError, OSError))
    reporter.done(args.output, *result.size)
    return 0


def _failed(reporter, exc, bad_input, stopped='cancelled'):
    """One line for what stopped a command, and its exit status: 3 stopped (Ctrl+C), 2 the
    input or the device (`bad_input`: the command's own kinds of bad input), 1 otherwise."""
    from .errors import classify
    if isinstance(exc, KeyboardInterrupt):
        reporter.error('cancelled', stopped)
        return 3
    if isinstance(exc, bad_input):
        reporter.error('bad_input', str(exc))
        return 2
    kind, message = classify(exc)
    reporter.error(kind, message)
    return 2 if kind in ('bad_input', 'device') else 1


def _check_output(path):
    """Refuse an output name PIL cannot write before the work, not after it."""
    import os
    from PIL import Image
    from .imageio import ImageError
    ext = os.path.splitext(path)[1].lower()
    if ext not in Image.registered_extensions():
        raise ImageError('%s: unknown image format %r (use .png, .jpg, .tif, ...)'
                         % (path, ext or 'no extension'))
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ImageError('%s: folder %s does not exist' % (path, folder))


def _add_batch(sub):
    from .batch import FORMATS
    p = sub.add_parser('batch', help='repaint many photos (files or folders) into a folder',
                       description='Repaint every PHOTO (files, or folders of pictures) in the '
                       'style of STYLE(s) into the folder OUTPUT, in one process: the network '
                       'loads once, one progress bar; a photo that fails gets one line and the '
                       'rest go on. With --remote (once or more) the photos are painted on '
                       "those machines' engines over SSH, each result renamed into place once "
                       'whole. Exit status 0: all written; 1: some failed; 2: nothing could '
                       'start (bad style, options, output folder or --remote).')
    p.add_argument('photos', nargs='+', metavar='PHOTO', help='photo file or folder of photos')
    p.add_argument('-s', '--style', nargs='+', default=[], metavar='STYLE',
                   help='style image file(s) (none for --method trained)')
    p.add_argument('-o', '--output', required=True, metavar='OUTPUT',
                   help='output folder (created if missing); each picture keeps its name')
    p.add_argument('--format', default='png', choices=FORMATS, help='output format '
                   '(default: png)')
    p.add_argument('--style-weights', type=float, nargs='+', dest='style_weights',
                   help='blend weight per style (default: equal)')
    _add_mask_options(p, batch=True)
    p.add_argument('--quiet', action='store_true', help='only the lines for photos that fail')
    _add_remote_options(p, many=True)
    _add_options(p)
    p.set_defaults(run=_run_batch)


def _run_batch(args):
    from . import batch, maskfiles
    from .imageio import ImageError, open_image
    from .reporting import Reporter
    from .api import options
    reporter = Reporter(quiet=args.quiet)
    kwargs = {n: getattr(args, n) for n in options() if n not in SKIP}
    kwargs.update(style_weights=args.style_weights, log=reporter.log)
    report = dict(fmt=args.format, callback=reporter.progress, say=reporter.log,
                  warn=lambda text: reporter.error('bad_input', text))
    try:
        hosts = _remote_hosts(args)
        _count_masks(args)
        styles = [open_image(s) for s in args.style]
        style_masks, painting_masks = _masks(args, styles)
        kwargs.update(style_masks=maskfiles.images(style_masks),
                      painting_masks=maskfiles.images(painting_masks))
        report['check'] = _mask_fit(style_masks)
        if hosts:
            from . import remote
            del kwargs['log']                  # each host's log lines go to say, named
            summary = remote.stylize_all(args.photos, styles, args.output, kwargs, hosts,
                                         **report)
        else:
            summary = batch.stylize_all(args.photos, styles, args.output, kwargs, **report)
    except (Exception, KeyboardInterrupt) as e:  # noqa: BLE001 - one clear line each
        return _failed(reporter, e, (batch.BatchError, ImageError))
    total = len(summary.written) + len(summary.failed)
    if summary.ok:
        reporter.log('wrote %d pictures to %s in %.1f s' % (
            total, args.output, time.monotonic() - reporter.start_time))
        return 0
    reporter.error('bad_input', '%d of %d photos failed (%s); the other %d are in %s' % (
        len(summary.failed), total, ', '.join(str(p) for p, _ in summary.failed),
        len(summary.written), args.output))
    return 1


def _mask_fit(style_masks):
    """A batch's check of each photo against the style masks, which serve every photo: a
    photo of another size fails with the mask's name and both sizes, the others go on."""
    if style_masks is None:
        return None
    from . import maskfiles

    def check(photo, content):
        maskfiles.fit_check(style_masks, [(photo, content.size)] * len(style_masks), 'style')
    return check


TRAIN_SKIP = ('callback', 'cancel', 'log', 'style_weights')


def _add_train(sub):
    from .training import options, train
    p = sub.add_parser('train', help='train a network for a style (then: --method trained)',
                       description='Train a network that paints photos in the style of '
                       'STYLE(s) in one pass (Johnson et al. 2016), on your folder of photos, '
                       'into MODEL.pth (pytorch/examples fast_neural_style layout), with '
                       'MODEL.checkpoint.pth and previews in MODEL.previews/ next to it. '
                       'Ctrl+C saves and stops; the same command with --resume continues. '
                       'Exit status 0: trained; 3: stopped early (saved); 1 or 2: failed.')
    p.add_argument('style', nargs='+', help='style image file(s)')
    p.add_argument('--photos', nargs='+', required=True, metavar='DIR',
                   help='folders (with their subfolders) or files of training photos')
    p.add_argument('-o', '--output', required=True, metavar='MODEL.pth',
                   help='the model file to write')
    p.add_argument('--style-weights', type=float, nargs='+', dest='style_weights',
                   help='blend weight per style (default: equal)')
    p.add_argument('--quiet', action='store_true', help='no progress output')
    for name, param in options().items():
        if name not in TRAIN_SKIP:
            p.add_argument(_flag(name), **_arg_spec(name, param, train))
    p.set_defaults(run=_run_train)


class _Stopper:
    """Ctrl+C once: stop after the step in progress and save; twice: stop at once.

    The handler writes its note straight to fd 2: the signal may land while the main thread
    holds the Reporter's lock (printing a log line), and taking it again would deadlock.
    """

    def __init__(self, quiet):
        import threading
        self.event, self.quiet = threading.Event(), quiet

    def __enter__(self):
        import signal
        self.before = signal.signal(signal.SIGINT, self._handle)
        return self.event

    def _handle(self, *_):
        if self.event.is_set():
            raise KeyboardInterrupt
        self.event.set()
        if not self.quiet:
            import os
            os.write(2, b'\nstopping after this step and saving (Ctrl+C again: stop at once, '
                        b'unsaved)\n')

    def __exit__(self, *exc):
        import signal
        signal.signal(signal.SIGINT, self.before)


def _run_train(args):
    from .imageio import ImageError, open_image
    from .photos import PhotoError
    from .reporting import Reporter
    from .training import OutputError, options, train
    reporter = Reporter(quiet=args.quiet)
    kwargs = {n: getattr(args, n) for n in options() if n not in TRAIN_SKIP}
    smooth = [None]

    def progress(p):       # the bar shows a running mean: one step's loss jumps about
        if p.loss is not None:
            smooth[0] = p.loss if smooth[0] is None else 0.9 * smooth[0] + 0.1 * p.loss
            p = dataclasses.replace(p, stage='%s, loss %.4g' % (p.stage, smooth[0]))
        reporter.progress(p)

    try:
        styles = [open_image(s) for s in args.style]
        with _Stopper(args.quiet) as stop:
            result = train(styles, args.photos, args.output, style_weights=args.style_weights,
                           callback=progress, cancel=stop, log=reporter.log, **kwargs)
    except (Exception, KeyboardInterrupt) as e:  # noqa: BLE001 - one clear line each
        return _failed(reporter, e, (ImageError, PhotoError, OutputError),
                       stopped='stopped at once: the last checkpoint is what was saved')
    if result.stopped:
        return 3
    pace = ', %.2f s a step' % result.seconds_per_step if result.seconds_per_step else ''
    reporter.log('wrote %s (%d steps%s); use it with: python -m nst_core stylize PHOTO '
                 '--method trained --trained-model %s -o OUT.png'
                 % (result.model, result.step, pace, result.model))
    return 0


def _add_worker(sub):
    p = sub.add_parser('worker', help='run one job file (the GIMP plug-in uses this)',
                       description='Run a job of protocol v1 (docs/protocol.md); events on stdout.')
    p.add_argument('job', help='path of job.json')
    p.set_defaults(run=lambda args: __import__('nst_core.worker', fromlist=['run_job_file'])
                   .run_job_file(args.job))


def _add_serve(sub):
    p = sub.add_parser('serve', help='the warm worker: run jobs sent over a Unix socket',
                       description='Serve jobs of protocol v1 one at a time on a Unix socket, '
                       'keeping the networks loaded between them (docs/protocol.md, "The warm '
                       'worker"). Exit status 0: ended (idle, socket file gone, SIGTERM); 2: '
                       'could not start; 3: a cancelled job did not stop within a second.')
    p.add_argument('--socket', required=True, metavar='PATH',
                   help='socket to bind, in a folder only you can enter (mode 0700)')
    p.add_argument('--key', required=True, help='names the install; repeated in the hello')
    p.add_argument('--keep-alive', required=True, type=_keep_alive, dest='keep_alive',
                   metavar='SECONDS', help='exit after this long without a connection (> 0)')
    p.set_defaults(run=lambda args: __import__('nst_core.server', fromlist=['main']).main(
        args.socket, args.key, args.keep_alive))


def _add_remote(sub):
    p = sub.add_parser('remote', help="a job over SSH: the remote end (ssh runs this)",
                       description='Read one job and its files on stdin and stream back its '
                       'events and files (docs/protocol.md, "Over SSH"), running it on this '
                       "machine's warm worker. ssh runs this on the GPU box; see docs/remote.md.")
    p.add_argument('--keep-alive', type=float, default=0, dest='keep_alive', metavar='SECONDS',
                   help='how long the warm worker here waits for the next job (0: a worker '
                   'for this job only)')
    p.add_argument('--probe', action='store_true',
                   help="only the hello, with this machine's devices (imports torch)")
    p.set_defaults(run=lambda args: __import__('nst_core.relay', fromlist=['main']).main(
        args.keep_alive, args.probe))


def _keep_alive(text):
    # 0 is not a warm worker: the plug-in then runs the one-shot `worker` instead
    try:
        seconds = float(text)
    except ValueError:
        seconds = float('nan')
    if not 0 < seconds < float('inf'):
        raise argparse.ArgumentTypeError('must be a number of seconds > 0, not %r' % text)
    return seconds


def _add_weights(sub):
    from .weights import commands
    commands.add_parser(sub)


def parser(command=None):
    """The whole command line; with command='remote', that subcommand alone: train's options
    come from nst_core.training, which imports torch (1-2 s), and ssh waits for the remote
    end's hello (its start is paid on every run over SSH)."""
    p = argparse.ArgumentParser(prog='python -m nst_core',
                                description='Neural style transfer (Gatys, fast arbitrary '
                                'style, trained per-style networks).')
    p.add_argument('--version', action='version', version='nst_core ' + __version__)
    sub = p.add_subparsers(dest='command', metavar='{stylize,batch,train,weights,worker,serve,remote}')
    sub.required = True
    adders = [_add_stylize, _add_batch, _add_train, _add_weights, _add_worker, _add_serve,
              _add_remote]
    for add in [_add_remote] if command == 'remote' else adders:
        add(sub)
    return p


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser(argv[0] if argv else None).parse_args(argv)
    return args.run(args)


if __name__ == '__main__':
    sys.exit(main())
