"""One run of the filter once its values are known: the checks, the job written from the
layers, the worker followed on GIMP's progress bar, and the result inserted.

Cancel: GIMP's progress Cancel button does not call back into a plug-in; GIMP asks the
plug-in to quit and then kills it with SIGKILL, and kills its whole process group if the
plug-in has one of its own (gimp_plug_in_close). So the plug-in makes itself a process group
leader and the worker dies with it. Where that is not possible (Windows, or GIMP crashing),
the worker's stdin, a pipe held only by this process, reaches end-of-file, which the worker
takes as a cancel (docs/protocol.md). The job folder of a killed run is removed by its
janitor (nst_client), else by the next run. A kill can also come while the result is written
back: the new layer is built whole before it is inserted (result.insert), so the image is
either as it was or holds the complete result. A run whose image is closed meanwhile
(Presence) stops its worker and ends quietly.
"""
import os
import time

import gi
gi.require_version('Gimp', '3.0')
from gi.repository import Gimp, GLib  # noqa: E402

import messages  # noqa: E402
import nst_client  # noqa: E402
import options  # noqa: E402
import pixels  # noqa: E402
import probe  # noqa: E402
import result  # noqa: E402
import settings  # noqa: E402
import style_choice  # noqa: E402
import style_regions  # noqa: E402
from messages import _  # noqa: E402
from nst_client import Failure  # noqa: E402
from progress import PreviewWindow, ProgressBar  # noqa: E402

PREVIEW_SECONDS = 2.0                # Quality's picture while it forms, at most this often
IMAGE_CHECK_SECONDS = 0.25


class Gone(Exception):
    """The image (or the layer) was closed or deleted during the run: nothing to add it to."""


class Presence:
    """Whether the image and the layer the result belongs to still exist (a closed image's
    ids turn invalid; any call with them then makes GIMP show an error)."""

    def __init__(self, image, content):
        self.image, self.content = image, content
        self.last = 0.0

    def check(self, force=False):
        now = time.monotonic()
        if not force and now - self.last < IMAGE_CHECK_SECONDS:
            return
        self.last = now
        if not self.image.is_valid() or not self.content.is_valid():
            probe.log('image or layer gone')
            raise Gone()


def restore_styles(config, image, content):
    """Filters > Repeat (and Ctrl+F) runs with the last values: GIMP restores all but the
    style layers and the regions' channels, which it cannot keep; style_choice finds them,
    or says which is gone."""
    try:
        style_choice.restore_channels(config, image)
    except style_choice.NotFound as e:
        raise Failure.said(messages.repeat_channel_gone(e.args[0])) from None
    if config.get_property('method') == 'trained':
        return                                  # the model file is the style
    try:
        style_choice.restore(config, image, content)
    except style_choice.NotFound as e:
        if e.args[0] is None:
            raise Failure.said(messages.repeat_without_style()) from None
        raise Failure.said(messages.repeat_style_gone(e.args[0])) from None
    probe.log('repeat with style layers %s, channels %s' % tuple(
        [(item.get_name() if item is not None else None)
         for item in (config.get_property(slot) for slot in slots)]
        for slots in (style_choice.SLOTS, style_choice.CHANNEL_SLOTS)))


def check_input(drawables, config):
    if len(drawables) != 1 or not isinstance(drawables[0], Gimp.Layer) \
            or isinstance(drawables[0], Gimp.LayerMask):
        raise Failure.said(messages.not_one_layer())
    if config.get_property('method') == 'trained':
        _check_model(config.get_property(options.MODEL_ARG))
    elif config.get_property('style-layer') is None:
        raise Failure.said(messages.no_style_layer())
    region_plan(drawables[0].get_image(), config)


def region_plan(image, config):
    """Where each style paints (style_regions.plan), checked before any work: each channel
    chosen, still in the image and in the photo's image, and "Everywhere else" the rest of
    something."""
    regions = options.regions(config)
    for slot, kind, channel in regions:
        if kind != options.IN_CHANNEL or channel is None:
            continue
        other = channel.get_image() if channel.is_valid() else None
        if other is None or not style_choice.attached(channel, other):
            raise Failure.said(messages.region_channel_gone(slot))
        if other.get_id() != image.get_id():
            raise Failure.said(messages.region_channel_elsewhere(slot, channel.get_name(),
                                                                 other.get_name()))
    try:
        return style_regions.plan(regions)
    except style_regions.RegionError as e:
        if e.problem == 'no_channel':
            raise Failure.said(messages.region_no_channel(e.slot)) from None
        raise Failure.said(messages.region_rest(e.slot, e.other)) from None


def region_masks(content, regions, width=None, height=None):
    """The style masks over the photo layer (at its size, or width x height), or a Failure
    for a region that misses it."""
    masks = pixels.region_masks(content, regions, width, height)
    missed = style_regions.nowhere(regions, masks)
    if missed is not None:
        raise Failure.said(messages.region_nowhere(
            missed.slot, missed.channel.get_name() if missed.channel is not None else None,
            content.get_name()))
    return masks


def _check_model(model):
    """The "Trained model" file must be a file here; the worker checks what is in it."""
    path = model.get_path() if model is not None else None
    if not path:
        raise Failure.said(messages.no_trained_model())
    if not os.path.isfile(path):
        raise Failure.said(messages.trained_model_missing(path, os.path.isdir(path)))


def _check_selection(image, content):
    """A selection that misses the layer would give an invisible result: say so instead."""
    if Gimp.Selection.is_empty(image):
        return
    found = content.mask_intersect()
    if not (found[0] if isinstance(found, tuple) else found):
        raise Failure.said(messages.selection_misses(content.get_name()))


def _own_process_group():
    """Lead a process group, so that GIMP's Cancel (kill(-pid, SIGKILL)) takes the worker too."""
    if hasattr(os, 'setpgid'):
        try:
            os.setpgid(0, 0)
        except OSError:        # already a session leader: GIMP then kills us alone
            pass


def stylize(image, content, config, interactive=False):
    """Everything after the dialog; returns the new layer."""
    if image.get_base_type() == Gimp.ImageBaseType.INDEXED:
        # the menu greys it out, but scripts can still call the procedure
        raise Failure.said(messages.indexed_image())
    install = settings.load()
    args, styles = options.arguments(config)
    if not styles and args['method'] != 'trained':
        raise Failure.said(messages.zero_weights())
    _check_selection(image, content)
    regions = region_plan(image, config)
    masks = region_masks(content, regions)
    probe.log('regions %s' % ' '.join(r.kind for r in regions))
    presence = Presence(image, content)
    # named now: the style's image may close meanwhile
    name = 'Neural Style (%s)' % (os.path.basename(args['trained_model']) if not styles
                                  else styles[0][0].get_name())
    style_names = [layer.get_name() for layer, _weight in styles]
    w, h = content.get_width(), content.get_height()
    if args['size']:
        args['size'] = min(args['size'], max(w, h))   # no work above the layer's own size
    _own_process_group()
    # the picture while it forms: Quality only (Fast is done in seconds), never in batch runs
    watch = interactive and args['method'] == 'quality'
    job_options = options.job_options(install, args)
    if watch:
        job_options['preview_seconds'] = PREVIEW_SECONDS
    bar, clock = ProgressBar(probe.cancel_after()), probe.Stopwatch()
    data = _paint(install, content, (styles, masks), job_options, (bar, clock, presence),
                  name if watch else None)
    presence.check(force=True)
    bar.text(_('inserting the layer'))
    place = result.place(image, content, [layer for layer, _weight in styles])
    layer = result.insert(image, content, name, data, place, style_names)
    Gimp.progress_end()
    Gimp.displays_flush()
    clock.lap('insert')
    probe.log('inserted layer %d at %d' % (layer.get_id(), image.get_item_position(layer)))
    return layer


def _paint(install, content, sources, job_options, watchers, window_title):
    """The result's pixels from a worker, followed by watchers (progress bar, stopwatch,
    presence); sources: the styles and their masks (None: everywhere); Quality's picture as
    it forms in a window titled window_title, if any."""
    bar, clock, presence = watchers
    styles, masks = sources
    w, h = content.get_width(), content.get_height()
    with nst_client.JobFolder(install, probe.HOOKS) as folder:
        job_path = pixels.write_job(folder, content, styles, job_options, masks=masks)
        clock.lap('write-job')
        bar.window = PreviewWindow(folder, window_title) if window_title else None
        try:
            _run_worker(install, job_path, bar, presence, job_options['method'])
        finally:
            if bar.window is not None:
                bar.window.close()
        clock.lap('worker')
        data = folder.read('result.rgba', w, h)
    clock.lap('read-result')
    return data


def _run_worker(install, job_path, bar, presence, method):
    """Run the job on the warm worker or a one-shot one (nst_client); GIMP's events and the
    image's presence are looked after while it runs."""
    context = GLib.MainContext.default()

    def poll():
        for _turn in range(50):        # the preview window draws; bounded, events pour in
            if not context.iteration(False):
                break
        presence.check()

    try:
        return nst_client.run_job(install, job_path, bar, poll, probe.HOOKS)
    except nst_client.WorkerFailed as e:
        raise Failure.said(messages.failure(e.error, e.code, nst_client.tail(e.log_path),
                                            install, method)) from None
