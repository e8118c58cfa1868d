"""What the plug-in says to a GIMP user: every failure and note, worded for the dialog and the
user's own terminal, and wrapped for translation.

Worker errors are worded from the fields the worker sends with them (docs/protocol.md,
"Errors": the kind, and e.g. a memory refusal's figures or the command that repairs the
weights), never from its English, which speaks to the command line; a worker that sends no
fields gets its message shown as it is. The worker client's own failures (nst_client.Failure:
a kind and its fields) are worded here too (said()). Standard library only, so the tests
import it.
"""
import gettext
import os

import nst_protocol
from urllib.parse import urlsplit

# As GIMP's own Python plug-ins do, but with a text domain of the plug-in's own: GIMP's
# catalogues do not hold these strings. No catalogue installed: the English as written.
TEXT_DOMAIN = 'gimp30-neural-style'
LOCALE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'locale')
_ = gettext.translation(TEXT_DOMAIN, LOCALE_DIR, fallback=True).gettext


def N_(message):
    """Marks text for translation where it is defined; _() translates it where it is used."""
    return message


FAILED = N_('Neural Style failed: %s')
METHOD_NAMES = {'quality': N_('Quality'), 'fast': N_('Fast'),
                'trained': N_('the trained model')}


# ---------------------------------------------------------------- the worker's errors

def failure(error, code=None, log_tail='', config=None, method=None):
    """The message for a job that ended without a result: `error` is the worker's error event
    (None: it sent none, `code` its exit code, None: the connection closed)."""
    if error is None:
        text = _('Neural Style failed: the worker stopped unexpectedly (%s) without saying '
                 'why.') % (_('exit code %s') % code if code is not None
                            else _('it closed the connection'))
    else:
        text = _worded(error, config or {}, method)
        if error.get('kind') != 'internal':
            return text
    if log_tail:
        text += '\n\n' + _("Last lines of the worker's log:") + '\n' + log_tail
    return text


def _worded(error, config, method):
    kind = error.get('kind')
    if kind == 'out_of_memory':
        return memory(error)
    if kind == 'weights' and method == 'trained':
        # nothing is fetched for a trained model: the file chosen is what is wrong
        return (_(FAILED) % error['message'] + '\n'
                + _('In the Neural Style dialog: choose another "Trained model" file.'))
    if kind == 'weights':
        return weights(error, config)
    if kind == 'device':
        return device(error)
    return _(FAILED) % error['message']


def gb(n):
    return ('%.2f GB' if n < 10 * 1024 ** 3 else '%.1f GB') % (n / 1024 ** 3)


def memory(error):
    """A memory refusal in the dialog's words, from its figures."""
    try:
        method, need, usable, free = (error['method'], float(error['needed_bytes']),
                                      float(error['usable_bytes']), float(error['free_bytes']))
        w, h, side = int(error['width']), int(error['height']), int(error['largest_side'])
    except (KeyError, TypeError, ValueError):         # a worker from before these fields
        return (_(FAILED) % error['message'] + '\n'
                + _('In the Neural Style dialog: lower "Output size", or tick "Fit to memory" '
                    'to work at the largest size that fits.'))
    text = _('Neural Style: not enough memory. %s at %d x %d px needs about %s, but only %s '
             'can be used now (%d %% of the %s free).') % (
        _('Quality') if method == 'quality' else _('Fast'), w, h, gb(need), gb(usable),
        round(100 * usable / free) if free else 0, gb(free))
    if side < 16:
        return text + '\n' + _('Close other programs, or choose a smaller layer.')
    ways = [_('tick "Fit to memory" to work at %d px, the largest size that fits now (the '
              'result is still scaled to the layer)') % side]
    if method == 'quality':
        ways.append(_('lower "Output size" to %d or less') % side)
        ways.append(_('choose the Fast method'))
    return text + '\n' + _('In the Neural Style dialog: %s.') % _(', or ').join(ways)


def shell_word(text):
    """text as one word of a command line (POSIX sh; cmd.exe on Windows)."""
    if text and all(c.isalnum() or c in '/._-+:=@%,' for c in text):
        return text
    if os.name == 'nt':
        return '"%s"' % text
    return "'%s'" % text.replace("'", "'\\''")


def repair_command(command, config):
    """The worker's repair as a command line that works pasted into a terminal: the python
    of a GIMP user's terminal has no nst_core, and the weights folder is the config's. For a
    remote worker: that python, there, through ssh (its own weights folder)."""
    remote = remote_parts(config)
    if remote:
        python, ssh = remote
        inner = ' '.join(shell_word(w) for w in [python, '-m', 'nst_core'] + list(command))
        return ' '.join(shell_word(w) for w in ssh + [inner])
    words = [config['python'], '-m', 'nst_core'] + list(command)
    if config.get('cache_dir') and '--cache-dir' not in words:
        words += ['--cache-dir', config['cache_dir']]
    return ' '.join(shell_word(w) for w in words)


def remote_parts(config):
    """(the remote's python, the ssh command that reaches it) for a remote worker, else
    None."""
    if not config.get('remote'):
        return None
    try:
        from nst_client import RemoteSpec
        spec = RemoteSpec(config['remote'])
    except Exception:  # noqa: BLE001 - a bad URL is worded where it is used
        return None
    return spec.python, ['ssh'] + spec.login()


def weights(error, config):
    command = error.get('command')
    if not (isinstance(command, list) and (config.get('python') or remote_parts(config))):
        return _(FAILED) % error['message']
    return (_(FAILED) % ('%s; run `%s`%s' % (error.get('reason', ''),
                                              repair_command(command, config),
                                              error.get('after', ''))) + '\n'
            + _('Run the command in a terminal, then try again.'))


def device(error):
    # the worker's own advice names the command line's values ("choose auto or cpu"); Auto
    # may mean the installer's GPU (neural_style.json), so: CPU
    available = error.get('available')
    if isinstance(error.get('device'), str) and isinstance(available, list):
        reason = _("device '%s' is not available here (available: %s)") % (
            error['device'], ', '.join(str(name) for name in available))
    else:
        reason = error['message']
    return (_(FAILED) % reason + '.\n'
            + _('In the Neural Style dialog: set "Device" to CPU.'))


# ---------------------------------------------------------------- the client's failures

def said(failure):
    """The message of an nst_client.Failure: the client sends a kind and its fields, worded
    here (kind 'said': words made here already, by the plug-in's own checks)."""
    kind, f = failure.kind, failure.fields
    if kind == 'said':
        return f['text']
    if kind == 'buffer_missing':
        return _('Neural Style failed: the worker reported %s but it is missing (%s).') % (
            f['name'], f['reason'])
    if kind == 'buffer_size':
        return _('Neural Style failed: %s holds %d bytes, expected %d (%dx%d).') % (
            f['name'], f['size'], f['expected'], f['width'], f['height'])
    if kind == 'interpreter':
        return _('Cannot start the worker interpreter %s: %s.\nRun "python3 install.py" again, '
                 'or correct "python" in %s.') % (f['python'], f['reason'], f['config'])
    if kind == 'worker_folder':
        return _('Neural Style cannot use %s for its worker: it must be a folder of yours that '
                 'only you can enter (mode 0700). Remove it, or set "keep_alive_seconds" to 0 in '
                 '"neural_style.json".') % f['path']
    if kind.startswith('remote_') or kind in ('ssh', 'ssh_missing'):
        text = remote_failure(kind, f)
    elif kind == 'stalled':
        text = _('Neural Style: the worker sent no progress for %g s and was stopped; it seemed '
                 'stuck. Try again, perhaps with a smaller "Output size". If steps really take '
                 'that long on this machine, raise "stall_seconds" in %s (0 = no limit).') % (
            f['seconds'], f['config'])
    elif kind == 'time_limit':
        text = _('Neural Style: the worker ran longer than the time limit of %g s and was '
                 'stopped. Choose a smaller "Output size", the Draft preset or the Fast method, '
                 'or raise "time_limit_seconds" in %s (0 = no limit).') % (
            f['seconds'], f['config'])
    else:       # a kind this plug-in does not know: say what there is
        return _(FAILED) % failure
    if f.get('log_tail'):
        text += '\n\n' + _("Last lines of the worker's log:") + '\n' + f['log_tail']
    return text




def remote_failure(kind, f):
    """A worker over SSH that could not be reached or used (docs/remote.md)."""
    if kind == 'remote_url':
        return _('Neural Style: "remote" in neural_style.json must be '
                 'ssh://[user@]host[:port]/path/to/python, not %r. Run "python3 install.py '
                 '--remote USER@HOST" again.') % (f['url'],)
    if kind == 'ssh_missing':
        return _('Neural Style cannot start ssh (%s): %s. Install an OpenSSH client, or run '
                 '"python3 install.py" to work on this computer.') % (f['ssh'], f['reason'])
    host = f['host']
    if kind == 'ssh':
        return _('Neural Style could not reach %s over ssh: %s') % (host, ssh_reason(
            f.get('reason') or '', host))
    if kind in ('remote_engine', 'remote_version'):
        what = (_('%s has no Neural Style engine at %s') % (host, f['python'])
                if kind == 'remote_engine' else
                _('the Neural Style engine on %s is version %s, this plug-in needs %s') % (
                    host, f['found'], f['wanted']))
        return _('Neural Style: %s.\nOn %s, in the Neural Style folder, run: %s\nthen, here: '
                 'python3 install.py --remote %s') % (
                     what, host, nst_protocol.WORKER_ONLY, host) + (
            '\n\n' + f['reason'] if kind == 'remote_engine' and f.get('reason') else '')
    if kind == 'remote_silent':
        return _('Neural Style: %s did not answer within %g s.') % (host, f['seconds'])
    if kind == 'remote_lost':
        return _('Neural Style: the connection to %s was lost in the middle of the job; '
                 'nothing was changed. Try again when %s can be reached.') % (host, host)
    return _(FAILED) % kind


def ssh_reason(said, host):
    """ssh's own words, and what to do about the refusals a user can mend."""
    from nst_client import ssh_refusal
    refusal = ssh_refusal(said)
    if refusal == 'no_key':
        advice = _('Key login to %s is not set up: in a terminal, run "ssh-copy-id %s" (or add '
                   'your public key to ~/.ssh/authorized_keys there), check that "ssh %s" logs '
                   'in without a password, then try again.') % (host, host, host)
    elif refusal == 'host_key_changed':
        advice = _("%s's host key is not the one ssh knows: if the machine really was "
                   'reinstalled, remove its old key with "ssh-keygen -R %s"; otherwise '
                   'someone may be in between.') % (host, host)
    elif refusal == 'host_key_unknown':
        advice = _('ssh does not know %s yet: in a terminal, run "ssh %s" once and accept its '
                   'host key.') % (host, host)
    else:
        advice = ''
    return said.strip() + ('\n' + advice if advice else '')


def loading():
    """The progress text while the worker loads the model."""
    return _('loading the model...')


# ---------------------------------------------------------------- the plug-in's own checks

def not_set_up(path):
    return _('Neural Style is not set up: %s is missing.\nRun "python3 install.py" from the '
             'Neural Style folder, then restart GIMP.') % path


def config_unreadable(path, error):
    return _('Cannot read the Neural Style configuration %s: %s\nRun "python3 install.py" '
             'again to rewrite it.') % (path, error)


def config_unknown(path):
    return _('The Neural Style configuration %s is not one this plug-in understands (expected '
             'version 1 naming "python", or "remote").\nRun "python3 install.py" again.') % path


def config_not_seconds(key, path, value):
    return _('"%s" in the Neural Style configuration %s must be a number of seconds (0 = no '
             'limit), not %r.\nCorrect it, or run "python3 install.py" again.') % (
        key, path, value)


def config_bad_remote(path, value):
    return _('"remote" in the Neural Style configuration %s must name the worker as '
             'ssh://[user@]host[:port]/path/to/python, not %r.\nRun "python3 install.py '
             '--remote [user@]host" again, or "python3 install.py --local" to work on this '
             'computer.') % (path, value)


def config_bad_ssh_command(path, value):
    return _('"ssh_command" in the Neural Style configuration %s must be a list of words, e.g. '
             '["ssh", "-F", "my_ssh_config"], not %r.\nCorrect it, or run "python3 install.py '
             '--remote [user@]host" again.') % (path, value)


def repeat_without_style():
    return _('Filters > Repeat "Neural Style" has no style layer to repeat with: choose one in '
             'Filters > Artistic > Neural Style... first.')


def repeat_style_gone(which):
    return _('Filters > Repeat "Neural Style" cannot run: the style layer of the last run, %s, '
             'is not open any more. Open that painting again (File > Open as Layers, or as an '
             'image), or choose another style in Filters > Artistic > Neural Style...') % which


def repeat_channel_gone(which):
    return _('Filters > Repeat "Neural Style" cannot run: the channel of the last run, %s, is '
             'not in this image any more. Choose where each style paints again in Filters > '
             'Artistic > Neural Style...') % which


def region_no_channel(slot):
    return _('Style %d is to paint "In the channel", but no channel is chosen for it. In the '
             'Neural Style dialog, choose its channel (Select > Save to Channel makes one of a '
             'selection), or let it paint "Everywhere".') % slot


def region_channel_gone(slot):
    return _('The channel chosen for style %d is not in the image any more (it was deleted). '
             'In the Neural Style dialog, choose another channel, or let the style paint '
             '"Everywhere".') % slot


def region_channel_elsewhere(slot, channel_name, image_name):
    return _('The channel "%s" chosen for style %d belongs to the image "%s", not to the '
             "photo's. Choose a channel of the photo's image (Select > Save to Channel makes "
             'one of a selection).') % (channel_name, slot, image_name)


def region_rest(slot, other=None):
    """Everywhere else, but there is no else: no other style has a channel of its own, or
    style `other` paints everywhere."""
    why = (_('style %d paints everywhere') % other if other is not None else
           _('no other style paints "In the channel"'))
    return _('Style %d is to paint "Everywhere else", where the other styles do not, but %s: '
             'it would paint nowhere. Let another style paint "In the channel", or this one '
             '"Everywhere".') % (slot, why)


def region_nowhere(slot, channel_name, layer_name):
    """A region that misses the photo layer altogether: the channel does not reach it, or
    (channel_name None: Everywhere else) the other styles' channels cover all of it."""
    if channel_name is None:
        return _('The other styles\' channels cover all of the layer "%s": style %d, '
                 '"Everywhere else", would paint nowhere. Let it paint "Everywhere", or make '
                 'their channels smaller.') % (layer_name, slot)
    return _('The channel "%s" of style %d covers none of the layer "%s": the style would '
             'paint nowhere. Choose another channel, or let it paint "Everywhere".') % (
        channel_name, slot, layer_name)


def not_one_layer():
    return _('Neural Style works on one layer: select exactly one layer (not a channel or a '
             'layer mask) and try again.')


def no_style_layer():
    return _('Choose a style layer: open or paste the painting whose style you want as a layer '
             '(in this or any open image) and pick it as "Style layer".')


def no_trained_model():
    return _('Choose a trained model: the Trained model method paints with a network trained '
             'for one style. In the Neural Style dialog, pick its file (.pth) as "Trained '
             'model", or choose the Quality or Fast method.')


def trained_model_missing(path, is_folder):
    return (_('The trained model %s is a folder: pick another file as "Trained model".')
            if is_folder else
            _('The trained model %s does not exist: pick another file as "Trained model".')
            ) % path


def selection_misses(layer_name):
    return _('The selection does not touch the layer "%s": select part of the layer, or '
             'Select > None to use all of it.') % layer_name


def indexed_image():
    return _('Neural Style works on RGB and grayscale images: convert this one with Image > '
             'Mode > RGB first.')


def zero_weights():
    return _('The style weights are all zero: give at least one style a weight.')


# ---------------------------------------------------------------- notes in the dialog

def size_note(method, size, width, height):
    """What Output size means for this layer, said under it: no silent caps."""
    side = max(width, height)
    if method != 'quality':
        return _("%s works at the layer's own size, %d x %d px.") % (
            _('Fast') if method == 'fast' else _('Trained model'), width, height)
    if size == 0 or size >= side:
        return _("Works at the layer's own size, %d x %d px%s.") % (
            width, height, '' if size in (0, side) else _(' (sizes above it add nothing)'))
    scale = size / side
    return _("Works at %d x %d px, then scales to the layer's %d x %d.") % (
        max(1, round(width * scale)), max(1, round(height * scale)), width, height)


def runs_on(config):
    """Where the work runs, said under Device: this computer, or the worker on another one
    (install.py --remote: its "remote_label", e.g. "gpu-box: NVIDIA H200", else its host)."""
    remote = config.get('remote')
    if not remote:
        return _('Runs on: this computer')
    label = config.get('remote_label')
    if not (isinstance(label, str) and label):
        label = urlsplit(remote).hostname or remote
    return _('Runs on: %s') % label


def preview_note(method, ticked, quality_steps, step=None):
    """The line under the dialog's preview: what it shows (and, while it paints, how far)."""
    if not ticked:
        text = _('Tick Preview to see %s on the layer.') % _(METHOD_NAMES[method])
    elif method == 'quality':
        text = _("Quality's first %d steps, at the preview's size: the run goes on to finer "
                 'detail.') % quality_steps
    else:
        text = _("%s, at the preview's size.") % _(METHOD_NAMES[method])
    if step is not None:
        text += ' ' + _('Painting... %s') % step
    return text
