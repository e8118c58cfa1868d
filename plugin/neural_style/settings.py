"""The plug-in's two settings files: the install's (neural_style.json, written by install.py:
the worker's interpreter, weights folder, device and time limits, or the worker on another
computer: "remote", "remote_label", "ssh_command"), and the dialog's last values, kept where
and as GIMP keeps a successful run's.

Standard library only; GIMP's calls import gi only when made, so the tests import the rest.
"""
import json
import os

import nst_protocol
import messages
import probe
import style_choice
from nst_client import Failure, RemoteSpec
from options import MODEL_ARG, OPTIONS, REGION_SLOTS, STYLE_SLOTS

CONFIG_NAME = 'neural_style.json'
CONFIG_ENV = 'NEURAL_STYLE_CONFIG'
HERE = os.path.dirname(os.path.abspath(__file__))


def load():
    """The install's settings, with the time limits' defaults and '_path' (where they are):
    the very dict the worker client gets, so "remote" and "ssh_command" reach it as they are."""
    path = os.environ.get(CONFIG_ENV) or os.path.join(HERE, CONFIG_NAME)
    try:
        with open(path, encoding='utf-8') as f:
            config = json.load(f)
    except FileNotFoundError:
        raise Failure.said(messages.not_set_up(path)) from None
    except (OSError, ValueError) as e:
        raise Failure.said(messages.config_unreadable(path, e)) from None
    if not isinstance(config, dict) or config.get('version') != 1 \
            or not (isinstance(config.get('python'), str) or config.get('remote')):
        raise Failure.said(messages.config_unknown(path))
    _check_remote(config, path)
    for key, default in nst_protocol.TIME_LIMITS.items():    # why these: nst_protocol
        value = config.setdefault(key, default)
        if not nst_protocol.is_seconds(value):
            raise Failure.said(messages.config_not_seconds(key, path, value))
    config['_path'] = path
    return config


def _check_remote(config, path):
    """A worker on another computer (install.py --remote): "remote" an ssh:// URL ("" or none:
    this computer), "ssh_command" a list of words; a "remote_label" that is no text is dropped
    (the dialog then names the host)."""
    remote = config.get('remote')
    if remote in (None, ''):
        return
    try:
        RemoteSpec(remote)
    except Failure:
        raise Failure.said(messages.config_bad_remote(path, remote)) from None
    ssh = config.get('ssh_command')
    if ssh is not None and not (isinstance(ssh, list) and ssh
                                and all(isinstance(word, str) and word for word in ssh)):
        raise Failure.said(messages.config_bad_ssh_command(path, ssh))
    if not isinstance(config.get('remote_label'), str):
        config.pop('remote_label', None)


def _quoted(text):
    return '"%s"' % text.replace('\\', '\\\\').replace('"', '\\"')


def last_values_text(config):
    """The options in GIMP's config syntax, as gimp_config_serialize_to_string writes them:
    one "(name value)" line each; booleans yes/no, strings quoted. (Layers are left out, as
    GIMP 3.0 leaves them out: it cannot serialize them; and so are the regions' channels,
    their choices are kept.)"""
    lines = []
    # the Preview toggle too: GIMP keeps it only after a successful run (a cancelled one
    # forgot it)
    for name in [option[0] for option in OPTIONS] + [w for _, w in STYLE_SLOTS[1:]] \
            + [REGION_SLOTS[layer][0] for layer, _w in STYLE_SLOTS] + ['preview']:
        value = config.get_property(name)
        if isinstance(value, bool):
            text = 'yes' if value else 'no'
        elif isinstance(value, str):
            text = _quoted(value)
        elif isinstance(value, float):
            text = repr(value)
        else:
            text = '%d' % value
        lines.append('(%s %s)\n' % (name, text))
    model = config.get_property(MODEL_ARG)
    if model is not None and model.get_path():
        lines.append('(%s %s)\n' % (MODEL_ARG, _quoted(model.get_path())))
    return ''.join(lines)


def remember(config, image):
    """Keep the values chosen in the dialog as GIMP keeps a successful run's: GIMP saves the
    last values (a parasite on the image, which wins, and its plug-in-settings file) only
    when a run succeeds, so after a failure the dialog came back with an older run's values.
    Saved right after OK, in the places and the format gimp_procedure_config_end_run uses
    (Python cannot call GimpConfig's serializers on a procedure's config object: its class
    does not show the interface to PyGObject); the style layers, which GIMP cannot keep,
    beside them (style_choice)."""
    from gi.repository import Gimp, GObject
    name = GObject.type_name(config.__gtype__)       # as G_OBJECT_TYPE_NAME in GIMP's code
    text = last_values_text(config)
    try:
        style_choice.remember(config, image)
    except Exception as e:      # noqa: BLE001 - a convenience: never worth failing the run
        probe.log('could not keep the style layers: %s' % e)
    try:
        image.attach_parasite(Gimp.Parasite.new(name + '-last', Gimp.PARASITE_PERSISTENT,
                                                list(text.encode() + b'\0')))
        folder = os.path.join(Gimp.directory(), 'plug-in-settings')
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, name + '.last')
        with open(path + '.part', 'w', encoding='utf-8') as f:
            f.write('# settings\n\n' + text + '\n# end of settings\n')
        os.replace(path + '.part', path)
        probe.log('kept the values as %s.last' % name)
    except Exception as e:      # noqa: BLE001 - a convenience: never worth failing the run
        probe.log('could not keep the values: %s' % e)
