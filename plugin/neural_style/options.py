"""The filter's options: the table GIMP's arguments and dialog are made from, and the job's
options made from the values chosen.

The options are named as nst_core.stylize()'s keyword arguments with dashes for GIMP, with the
same defaults and choices (tests/test_gimp.py compares this table with stylize()). Standard
library only: `config` is anything with get_property (GIMP's procedure config).
"""
import nst_protocol
from messages import N_

# (gimp name, kind, label, help, default, min, max) ; for 'choice', min is a list of
# (value, label) and max is None; for 'bool' both are None. The labels carry their mnemonic
# (the underlined letter, Alt+letter in the dialog), as GIMP's own plug-ins' do; none may take
# the letters of the dialog's buttons (Reset, Cancel, OK, Load/Save Settings: r c o l s), of
# Reset's two choices (Initial Values, Factory Defaults: i f) or of the preview's toggle (p).
# The regions' six labels found too few letters left: they take 1, u, k, x and i and f,
# which only the Reset popover also uses (it holds the focus while it is open; GIMP checks
# the labels against its buttons, not against the popover).
OPTIONS = [
    ('method', 'choice', N_('_Method'),
     N_('Quality: optimise the picture (slow, best). Fast: one pass of a pretrained network, '
        "at the layer's own size. Trained model: one pass of a network trained for one style "
        '(the "Trained model" file; no style layer needed).'),
     'quality', [('quality', N_('Quality')), ('fast', N_('Fast')),
                 ('trained', N_('Trained model'))], None),
    ('strength', 'double', N_('Stre_ngth'),
     N_('How much style: 0 keeps the content, 1 is the balanced default, up to 2 bolder '
        '(Quality; Fast and Trained model paint at most 1).'), 1.0, 0.0, 2.0),
    ('style-scale', 'double', N_('Style sc_ale'),
     N_("Size of the style's strokes relative to the content."), 1.0, 0.1, 8.0),
    ('preserve-colors', 'choice', N_('Preser_ve color'),
     N_("Keep the content's colors: luminance transfers only brightness; histogram matches "
        "the style's colors to the content's first."),
     'none', [('none', N_('No')), ('luminance', N_('Luminance only')),
              ('histogram', N_('Match histogram'))], None),
    ('size', 'int', N_('Output si_ze (px)'),
     N_("Quality: the size of the longest side to paint at, in pixels (0 = the layer's own "
        'size, the sharpest; larger than the layer is not used); a smaller size is faster and '
        "is scaled to the layer. Fast always works at the layer's own size."), 0, 0, 16384),
    ('fit', 'bool', N_('Fi_t to memory'),
     N_('When the output size needs more memory than is free, work at the largest size that '
        'fits instead of refusing.'), False, None, None),
    ('preset', 'choice', N_('_Quality preset'),
     N_('The Quality method: Draft and Normal paint with fewer or more optimisation steps; '
        'Best also pulls each part of the picture towards the most similar part of the '
        'painting (nearest-neighbour style transfer) and paints bolder, in about a tenth more '
        "time than Normal."),
     'normal', [('draft', N_('Draft')), ('normal', N_('Normal')), ('best', N_('Best'))], None),
    ('device', 'choice', N_('_Device'),
     N_("Where to compute: auto uses the device from the installer's configuration "
        '(by default a GPU when there is one). When the work runs on another computer '
        '(install.py --remote; "Runs on" says where), these are that computer\'s devices.'),
     'auto', [('auto', N_('Auto')), ('cpu', N_('CPU')), ('cuda', N_('CUDA (NVIDIA GPU)')),
              ('mps', N_('MPS (Apple GPU)'))], None),
    ('seed', 'int', N_('S_eed'), N_('Random seed: the same seed gives the same picture.'),
     0, 0, 2147483647),
]
STYLE_SLOTS = [('style-layer', None), ('style-layer-2', 'style-weight-2'),
               ('style-layer-3', 'style-weight-3')]
STYLE_LABELS = {'style-layer': N_('St_yle layer'), 'style-layer-2': N_('Style layer _2'),
                'style-weight-2': N_('_Weight of style 2'),
                'style-layer-3': N_('Style layer _3'),
                'style-weight-3': N_('Wei_ght of style 3')}
# Where each style paints (issue 24): per style slot a choice and the channel (a selection
# saved with Select > Save to Channel) it names. "Everywhere else" is everywhere the other
# styles' regions are not, so two styles and one channel take one click, not a second channel.
# For Trained model (no style layers) the first slot's region is where the network paints.
REGION_SLOTS = {'style-layer': ('style-region', 'style-channel'),
                'style-layer-2': ('style-region-2', 'style-channel-2'),
                'style-layer-3': ('style-region-3', 'style-channel-3')}
EVERYWHERE, IN_CHANNEL, REST = 'everywhere', 'channel', 'rest'
REGION_CHOICES = [(EVERYWHERE, N_('Everywhere')), (IN_CHANNEL, N_('In the channel')),
                  (REST, N_('Everywhere else'))]
REGION_LABELS = {'style-region': N_('Where to use style _1'),
                 'style-channel': N_('Mas_k channel'),
                 'style-region-2': N_('Where to _use style 2'),
                 'style-channel-2': N_('Channel _for style 2'),
                 'style-region-3': N_('E_xtent of style 3'),
                 'style-channel-3': N_('Channel for _it')}
# A network trained for one style (python -m nst_core train, or pytorch/examples' candy.pth
# ...): the file is the style, so the style layers are not used with it.
MODEL_ARG = 'trained-model'
MODEL_LABEL = N_('Trained model (.pt_h)')
# The dialog's order: what to paint with first, the method and what only Quality uses next to
# it, then the look, then where and how to compute.
DIALOG_ORDER = ['style-layer', 'style-region', 'style-channel', 'region-note', 'method',
                MODEL_ARG, 'model-note', 'preset', 'size',
                'size-note', 'strength', 'style-scale', 'preserve-colors', 'fit', 'device',
                'runs-on-note', 'seed', 'more-styles-expander']
QUALITY_ONLY = ('preset', 'size')
STYLE_ONLY = ('style-layer', 'more-styles-expander')      # greyed out for Trained model
SLIDERS = ('strength', 'style-scale', 'style-weight-2', 'style-weight-3')
# what the dialog's preview shows depends on these (not on Quality's preset, size, seed)
PREVIEW_OPTIONS = ('style-layer', 'style-layer-2', 'style-weight-2', 'style-layer-3',
                   'style-weight-3', 'method', MODEL_ARG, 'strength', 'style-scale',
                   'preserve-colors', 'device') + tuple(
                       name for pair in REGION_SLOTS.values() for name in pair)


def more_styles_box():
    """The arguments folded under "Blend in more styles": each extra style's layer, weight and
    region, in that order."""
    return [name for layer, weight in STYLE_SLOTS[1:]
            for name in (layer, weight) + REGION_SLOTS[layer]]


def arguments(config):
    """(args, styles): the options as stylize()'s names, with 'trained_model' the model
    file's path; styles [(layer, weight)] with a weight above 0 (none for Trained model)."""
    args = {name.replace('-', '_'): config.get_property(name) for name, *_ in OPTIONS}
    model = config.get_property(MODEL_ARG)
    args['trained_model'] = model.get_path() if model is not None else None
    if args['method'] == 'trained':
        return args, []                      # the network is the style
    styles = []
    for layer_name, weight_name in STYLE_SLOTS:
        layer = config.get_property(layer_name)
        weight = config.get_property(weight_name) if weight_name else 1.0
        if layer is not None and weight > 0:
            styles.append((layer, weight))
    return args, styles


def regions(config):
    """[(slot, region, channel)] aligned with arguments()'s styles: the style's number in the
    dialog (1..3), where it paints, the channel argument (None unless chosen); for Trained
    model the first slot's (where the network paints). style_regions.plan checks them."""
    def slot(number, layer_name):
        region_name, channel_name = REGION_SLOTS[layer_name]
        return number, config.get_property(region_name), config.get_property(channel_name)
    if config.get_property('method') == 'trained':
        return [slot(1, STYLE_SLOTS[0][0])]
    out = []
    for number, (layer_name, weight_name) in enumerate(STYLE_SLOTS, 1):
        weight = config.get_property(weight_name) if weight_name else 1.0
        if config.get_property(layer_name) is not None and weight > 0:
            out.append(slot(number, layer_name))
    return out


def job_options(settings, args):
    """The job's "options" (docs/protocol.md) from the arguments and the install's settings
    (neural_style.json: its device for Auto, and the worker's own keys)."""
    device = args['device']
    if device == 'auto':
        device = settings.get('device') or 'auto'
    # Fast works at the layer's own size (tiled when large): at a smaller size it is no faster
    # in GIMP (torch's start-up dominates) and only softer once enlarged to the layer.
    size = args['size'] if args['method'] == 'quality' else 0
    options = {'method': args['method'], 'strength': args['strength'],
               'style_scale': args['style_scale'], 'preserve_colors': args['preserve_colors'],
               'size': size, 'fit': args['fit'], 'preset': args['preset'],
               'device': device, 'seed': args['seed']}
    if args['method'] == 'trained':
        options['trained_model'] = args['trained_model']
    for key in nst_protocol.WORKER_OPTIONS:
        if settings.get(key):
            options[key] = settings[key]
    return options
