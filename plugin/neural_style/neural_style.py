#!/usr/bin/env python3
"""Neural Style for GIMP 3: Filters > Artistic > Neural Style...

Runs inside GIMP's own Python, so it uses the standard library and gi only. The picture is
made by the nst_core worker, started with the interpreter named in neural_style.json (written
by install.py). This file registers the filter and its arguments and runs it: the dialog
(dialog.py), then the run (job.py: the layers into a job, the worker's events on GIMP's
progress bar, the result as a new layer in one undo step). What the user is told is in
messages.py, the options' table in options.py.
"""
import os
import sys

import gi
gi.require_version('Gimp', '3.0')
from gi.repository import Gimp, Gio, GLib, GObject  # noqa: E402

import dialog  # noqa: E402  (the modules beside this file)
import job  # noqa: E402
import messages  # noqa: E402
import probe  # noqa: E402
import settings  # noqa: E402
import style_choice  # noqa: E402
from messages import _  # noqa: E402
from nst_client import Cancelled, Failure  # noqa: E402
from options import (EVERYWHERE, MODEL_ARG, MODEL_LABEL, OPTIONS,  # noqa: E402
                     REGION_CHOICES, REGION_LABELS, REGION_SLOTS, STYLE_LABELS, STYLE_SLOTS)

PROC_NAME = 'python-fu-neural-style'
HELP_DOMAIN = 'neural-style-help'    # help/en/gimp-help.xml maps PROC_NAME to its page
HERE = os.path.dirname(os.path.abspath(__file__))


def run(procedure, run_mode, image, drawables, config, data):
    try:
        return _run(procedure, run_mode, image, drawables, config)
    finally:
        # GIMP saves the config as the last values after a successful interactive run, and
        # cannot write a layer: it printed "couldn't serialize property ...::style-layer of
        # type GimpLayer" twice per run. style_choice keeps them instead.
        # The regions' channels likewise (style_choice keeps them too).
        for slot in style_choice.SLOTS + style_choice.CHANNEL_SLOTS:
            config.set_property(slot, None)


def _run(procedure, run_mode, image, drawables, config):
    interactive = run_mode == Gimp.RunMode.INTERACTIVE
    if interactive and len(drawables) == 1:
        style_choice.offer(config, image, drawables[0])
        if not dialog.run(procedure, config, image, drawables[0]):
            return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, None)
        settings.remember(config, image)
    try:
        if run_mode == Gimp.RunMode.WITH_LAST_VALS and drawables:
            job.restore_styles(config, image, drawables[0])
        job.check_input(drawables, config)
        job.stylize(image, drawables[0], config, interactive)
    except Cancelled:
        probe.log('cancelled')
        Gimp.progress_end()
        return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, None)
    except job.Gone:
        # the user closed the image (or deleted the layer): they do not want the result
        # any more, and any further call about it would make GIMP show errors
        probe.log('ended quietly: the image or the layer is gone')
        return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, None)
    except Failure as e:
        text = messages.said(e)
        probe.log('failed: %s' % text)
        Gimp.progress_end()
        return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR,
                                           GLib.Error(text))
    return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, None)


def declare(procedure):
    """The procedure's arguments: the dialog is made from them (dialog.py)."""
    rw = GObject.ParamFlags.READWRITE
    procedure.add_layer_argument('style-layer', _(STYLE_LABELS['style-layer']),
                                 _('The painting whose style to use (any layer of any open '
                                   'image)'), True, rw)
    for layer_name, weight_name in STYLE_SLOTS[1:]:
        procedure.add_layer_argument(layer_name, _(STYLE_LABELS[layer_name]),
                                     _('Optional: another style to blend in'), True, rw)
        procedure.add_double_argument(weight_name, _(STYLE_LABELS[weight_name]),
                                      _('Blend weight of style %s (style 1 has weight 1)')
                                      % layer_name[-1], 0.0, 10.0, 1.0, rw)
    procedure.add_boolean_aux_argument('preview', _('_Preview'),
                                       _('Show the chosen method on the layer in the dialog '
                                         '(for Quality: its first steps)'), False, rw)
    procedure.add_file_argument(MODEL_ARG, _(MODEL_LABEL),
                                _('For the Trained model method: a network file from "python '
                                  '-m nst_core train" or a pytorch/examples fast_neural_style '
                                  'model (candy.pth, ...)'), Gimp.FileChooserAction.OPEN, True,
                                None, rw)
    for name, kind, label, blurb, default, low, high in OPTIONS:
        label, blurb = _(label), _(blurb)
        if kind == 'choice':
            procedure.add_choice_argument(name, label, blurb, _choice(low), default, rw)
        elif kind == 'double':
            procedure.add_double_argument(name, label, blurb, low, high, default, rw)
        elif kind == 'bool':
            procedure.add_boolean_argument(name, label, blurb, default, rw)
        else:
            procedure.add_int_argument(name, label, blurb, low, high, default, rw)
    _declare_regions(procedure, rw)


def _choice(values):
    choice = Gimp.Choice.new()
    for i, (value, text) in enumerate(values):
        choice.add(value, i, _(text), '')
    return choice


def _declare_regions(procedure, rw):
    """Where each style paints: a choice and a channel per style slot (after the older
    arguments, so that scripts passing those by position are not disturbed)."""
    for number, (layer_name, _weight) in enumerate(STYLE_SLOTS, 1):
        region, channel = REGION_SLOTS[layer_name]
        procedure.add_choice_argument(
            region, _(REGION_LABELS[region]),
            _('Where style %d paints: everywhere; in the channel chosen below it (a saved '
              'selection: Select > Save to Channel); or everywhere the other styles\' '
              'channels are not. For Trained model, style 1\'s is where the network paints.')
            % number, _choice(REGION_CHOICES), EVERYWHERE, rw)
        procedure.add_channel_argument(
            channel, _(REGION_LABELS[channel]),
            _('The channel of the photo\'s image where style %d paints, white = here (soft '
              'edges blend): make one with Select > Save to Channel') % number, True, rw)


class NeuralStyle(Gimp.PlugIn):
    def do_set_i18n(self, name):
        return False        # messages.py translates the plug-in's own text

    def do_query_procedures(self):
        # the dialog's Help button and F1 open help/en/index.html, shipped beside this file
        # (without a help domain of its own GIMP looked for this filter in its user manual,
        # which has no page for it, and said the manual is not installed)
        self.set_help_domain(HELP_DOMAIN, Gio.File.new_for_path(os.path.join(HERE, 'help')))
        return [PROC_NAME]

    def do_create_procedure(self, name):
        procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, run, None)
        procedure.set_image_types('RGB*, GRAY*')
        procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
        procedure.set_menu_label(_('Neural Style...'))
        procedure.add_menu_path('<Image>/Filters/Artistic')
        procedure.set_documentation(
            _('Repaint a layer in the style of another picture'),
            _('Adds a new layer "Neural Style (<style>)" above the selected layer: its content '
              'repainted in the style of the style layer(s), by neural style transfer '
              '(Quality: Gatys et al. optimisation; Fast: a pretrained arbitrary-style '
              'network; Trained model: a network trained for one style, no style layer '
              'needed). The work runs in a separate Python with PyTorch, set up by '
              'install.py.'), name)
        procedure.set_attribution('Neural Style contributors', 'Neural Style contributors',
                                  '2025')
        declare(procedure)
        return procedure


if __name__ == '__main__':
    Gimp.main(NeuralStyle.__gtype__, sys.argv)
