"""The dialog: GIMP's GimpUi.ProcedureDialog, generated from the procedure's arguments
(neural_style.declare); here it is only ordered, given sliders and notes, laid out beside its
preview, and made to grey out what the chosen method does not use."""
import gi
gi.require_version('Gimp', '3.0')
from gi.repository import Gimp, GLib, GObject  # noqa: E402

import dialog_preview  # noqa: E402
import messages  # noqa: E402
import probe  # noqa: E402
import options  # noqa: E402
import settings  # noqa: E402
import style_choice  # noqa: E402
import style_regions  # noqa: E402
from messages import _  # noqa: E402
from nst_client import Failure  # noqa: E402
from options import (DIALOG_ORDER, IN_CHANNEL, MODEL_ARG, OPTIONS,  # noqa: E402
                     QUALITY_ONLY, REGION_SLOTS, SLIDERS, STYLE_ONLY, STYLE_SLOTS)
from layer_chooser import StyleChooser  # noqa: E402

# The dialog beside the buttons, its title bar and a panel: what is left of the screen's
# height for the options, which scroll beyond it (a 768 px screen showed no OK button).
CHROME = 240


def _size_note(config, content):
    return messages.size_note(config.get_property('method'), config.get_property('size'),
                              content.get_width(), content.get_height())


def _screen_height(Gdk):
    """The height of the screen's work area (without panels), 768 when it cannot be known."""
    display = Gdk.Display.get_default()
    monitor = display.get_primary_monitor() or display.get_monitor(0) if display else None
    return monitor.get_workarea().height if monitor is not None else 768


def _layout(dialog, preview, label, Gtk, Gdk):
    """The preview beside the options, as GIMP's plug-ins with a preview have it (Lighting
    Effects, Curve Bend), not above them: the options in a scrolled window no taller than the
    screen allows, so the dialog fits a small screen and can be made smaller."""
    scrolled = dialog.get_widget('options-scroll', GObject.TYPE_NONE)
    scrolled.set_policy(Gtk.PolicyType.NEVER, Gtk.PolicyType.AUTOMATIC)
    scrolled.set_propagate_natural_width(True)
    scrolled.set_propagate_natural_height(True)
    scrolled.set_max_content_height(max(200, _screen_height(Gdk) - CHROME))
    parent = scrolled.get_parent()
    position = parent.get_children().index(scrolled)
    parent.remove(scrolled)
    column = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=6, valign=Gtk.Align.START)
    column.pack_start(preview, False, False, 0)
    column.pack_start(label, False, False, 0)
    row = Gtk.Box(orientation=Gtk.Orientation.HORIZONTAL, spacing=12)
    row.pack_start(column, False, False, 0)
    row.pack_start(scrolled, True, True, 0)
    parent.pack_start(row, True, True, 0)
    parent.reorder_child(row, position)
    for widget in (preview, label, column, row):
        widget.show()


def _choice_values(*names):
    return Gimp.ValueArray.new_from_values([GObject.Value(GObject.TYPE_STRING, n)
                                           for n in names])


def _widgets(dialog, Gtk):
    """Sliders and combo boxes for the arguments that want them."""
    for name in SLIDERS:                      # sliders, as GIMP's own filters have
        scale = dialog.get_scale_entry(name, 1.0)
        if name == 'style-scale':
            # 0.1..8 on a linear slider put the default 1 at the far left, where it read as
            # the minimum; logarithmic, 1 sits in the middle and halving or doubling the
            # strokes moves it as far either way
            scale.set_logarithmic(True)
    regions = [region for region, _channel in REGION_SLOTS.values()]
    for name in [option[0] for option in OPTIONS if option[1] == 'choice'] + regions:
        # combo boxes in both versions: GIMP 3.2 makes a radio frame of a choice of up to
        # three, whose title has no mnemonic (and it prints a warning for each)
        dialog.get_widget(name, Gtk.ComboBox.__gtype__)


def _runs_on():
    """Where the work runs (this computer, or the worker over ssh), said under Device."""
    try:
        return messages.runs_on(settings.load())
    except Failure:
        return ''                 # OK says what is wrong with the configuration


def _notes(dialog, config, content):
    notes = {}
    for name, text in (('size-note', _size_note(config, content)),
                       ('model-note', _("Choose the trained model's file (.pth) to paint "
                                        'with it.')),
                       ('region-note', ''),
                       ('runs-on-note', _runs_on())):
        note = notes[name] = dialog.get_label(name, text, False, False)
        note.set_xalign(0.0)
        note.set_line_wrap(True)
        note.set_max_width_chars(50)
        note.get_style_context().add_class('dim-label')
    return notes


def _fill(dialog):
    """The arguments' widgets in DIALOG_ORDER, the extra styles folded, and what each
    method does not use greyed out."""
    dialog.fill_box('more-styles', options.more_styles_box())
    dialog.get_label('more-styles-title', _('_Blend in more styles'), False, True)
    # folded, as GIMP's filters fold their Blending Options: most runs use one style
    dialog.fill_expander('more-styles-expander', 'more-styles-title', False, 'more-styles')
    dialog.fill_box('options', DIALOG_ORDER)
    dialog.fill_scrolled_window('options-scroll', 'options')
    dialog.fill(['options-scroll'])
    for name in QUALITY_ONLY:                 # greyed out while Fast is chosen
        dialog.set_sensitive_if_in(name, None, 'method', _choice_values('quality'), True)
    dialog.set_sensitive_if_in(MODEL_ARG, None, 'method', _choice_values('trained'), True)
    # a trained network is its own style (the expander is no argument: GIMP 3.0 binds only
    # arguments' widgets, so the watcher greys it out)
    dialog.set_sensitive_if_in(STYLE_ONLY[0], None, 'method', _choice_values('trained'), False)
    for region, channel in REGION_SLOTS.values():   # the channel only for "In the channel"
        dialog.set_sensitive_if_in(channel, None, region, _choice_values(IN_CHANNEL), True)


def region_problem(config, image):
    """What keeps the regions from being painted, in the dialog's words, else None: OK waits
    for it (job.region_plan says the same when a script runs the filter)."""
    regions = options.regions(config)
    try:
        plan = style_regions.plan(regions)
    except style_regions.RegionError as e:
        if e.problem == 'no_channel':
            return messages.region_no_channel(e.slot)
        return messages.region_rest(e.slot, e.other)
    for r in plan:
        if r.channel is not None and not style_choice.attached(r.channel, image):
            return messages.region_channel_gone(r.slot) if not r.channel.is_valid() \
                or r.channel.get_image().get_id() == image.get_id() else \
                messages.region_channel_elsewhere(r.slot, r.channel.get_name(),
                                                  r.channel.get_image().get_name())
    return None


def _offer_channel(config, image, region, channel):
    """"In the channel" chosen and no channel yet: the image's selected channel, else its
    first, so that one click does it when the image has one."""
    if config.get_property(region) != IN_CHANNEL or config.get_property(channel) is not None:
        return
    found = list(image.get_selected_channels()) or list(image.get_channels())
    if found:
        config.set_property(channel, found[0])


def _watch(dialog, config, image, content, notes, ok_button, watcher):
    """What follows a change, and once now: the style guessed again when emptied, OK only
    when there is something to paint with, the notes."""
    def changed(*_args):
        if config.get_property('style-layer') is None:
            # Reset to Factory Defaults empties it (its default is none): offer the guess
            # again, as on the first opening (never a layer this filter made); with none to
            # offer it stays empty (setting None again would notify, and call this again)
            guess = style_choice.guess(image, content)
            if guess is not None:
                config.set_property('style-layer', guess)
        for region, channel in REGION_SLOTS.values():
            _offer_channel(config, image, region, channel)
        trained = config.get_property('method') == 'trained'
        model = config.get_property(MODEL_ARG)
        # OK waits for what the method paints with: the painting, or the trained model's
        # file (OK closed the dialog only to show an error); and for regions it can paint
        ready = (model is not None and bool(model.get_path())) if trained \
            else config.get_property('style-layer') is not None
        problem = region_problem(config, image)
        ok_button.set_sensitive(ready and problem is None)
        dialog.get_widget(STYLE_ONLY[1], GObject.TYPE_NONE).set_sensitive(not trained)
        notes['model-note'].set_visible(trained and not ready)
        notes['region-note'].set_text(problem or '')
        notes['region-note'].set_visible(problem is not None)
        notes['size-note'].set_text(_size_note(config, content))
        watcher.report('dialog-state')
        return False

    # the regions' problems depend on which styles are used, where and with which channel
    watched = ['style-layer', 'method', 'size', MODEL_ARG] + [
        name for pair in STYLE_SLOTS[1:] + list(REGION_SLOTS.values()) for name in pair]
    for name in watched:
        config.connect('notify::' + name, lambda *_args: GLib.idle_add(changed))
    changed()


def run(procedure, config, image, content):
    """Show the dialog; True for OK."""
    gi.require_version('GimpUi', '3.0')
    gi.require_version('Gtk', '3.0')
    gi.require_version('Gdk', '3.0')
    from gi.repository import Gdk, GimpUi, Gtk, Pango
    # GIMP's previews name their stored state after the program: it must be a canonical
    # identifier (dashes, no underscores), or GIMP refuses it with an error message
    GLib.set_prgname('neural-style')
    GimpUi.init('neural-style')
    dialog = GimpUi.ProcedureDialog.new(procedure, config, _('Neural Style'))
    _widgets(dialog, Gtk)
    notes = _notes(dialog, config, content)
    _fill(dialog)
    preview = dialog_preview.make(config, image, content)
    _layout(dialog, preview.preview, preview.label, Gtk, Gdk)
    style = StyleChooser(dialog.get_widget('style-layer', GObject.TYPE_NONE), Gtk, Pango,
                         _('Choose a layer...'))
    for name in ('style-layer-2', 'style-layer-3'):
        StyleChooser(dialog.get_widget(name, GObject.TYPE_NONE), Gtk, Pango,
                     _('None (optional)'))
    for _region, channel in REGION_SLOTS.values():
        StyleChooser(dialog.get_widget(channel, GObject.TYPE_NONE), Gtk, Pango,
                     _('Choose a channel...'), _('Channel "%s" of image "%s"'))
    ok_button = dialog.get_widget_for_response(Gtk.ResponseType.OK)
    watcher = probe.DialogProbe(dialog, config, style, ok_button, notes, preview)
    # tall enough for the note a Trained model without a file adds (which else scrolled the
    # last options out of sight), yet free to be made smaller
    notes['model-note'].show()
    notes['region-note'].hide()
    dialog.set_default_size(-1, min(dialog.get_preferred_height()[1], _screen_height(Gdk)))
    _watch(dialog, config, image, content, notes, ok_button, watcher)
    dialog.connect('map-event', lambda *_args: GLib.timeout_add(
        1000, lambda: watcher.report('dialog-shown')) and False)

    ok = dialog.run()
    dialog.destroy()
    preview.close()
    layer = config.get_property('style-layer')
    probe.log('dialog ok=%s style-layer=%s method=%s seed=%d' % (
        ok, layer.get_name() if layer else None, config.get_property('method'),
        config.get_property('seed')))
    return ok
