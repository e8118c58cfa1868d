# Runs INSIDE gimp-console (python-fu-eval), like batch_test.py:
#   BATCH_SCRIPT=tests/gimp/trained_test.py GUI=0 tests/gimp/run.sh
# The Trained model method in real GIMP: a network file (made here by the worker's venv: one
# in the layout `python -m nst_core train` writes, one as old pytorch/examples models are,
# with instance-norm running statistics) adds one layer like the other methods, with no
# style layer; no file, a missing or a wrong one is refused and leaves the image as it was.
import os
import subprocess
import sys

sys.path.insert(0, os.environ['NS_TEST'])
import fixtures as fx  # noqa: E402
from gi.repository import Gimp, Gio  # noqa: E402

S = Gimp.PDBStatusType
MAKE = r'''
import sys, torch
from nst_core.models.transformer import TransformerNet
torch.manual_seed(0)
net = TransformerNet()
with torch.no_grad():                  # norms away from 1 and 0: a visible, varied painting
    for k, p in net.named_parameters():
        if '.in' in '.' + k or k.startswith('in'):
            p.add_(torch.randn(p.shape) * 0.3)
state = net.state_dict()
torch.save(state, sys.argv[1])
old = dict(state)
for k, v in state.items():
    if k.split('.')[-2].startswith('in') and k.endswith('.weight'):
        old[k[:-6] + 'running_mean'] = torch.zeros_like(v)
        old[k[:-6] + 'running_var'] = torch.ones_like(v)
torch.save(old, sys.argv[2])
'''


def make_models():
    new, old = os.path.join(fx.TEST, 'mine.pth'), os.path.join(fx.TEST, 'candy_old.pth')
    env = dict(os.environ, PYTHONPATH=os.environ['NS_SRC'])
    proc = subprocess.run([os.environ['NS_VENV_PY'], '-c', MAKE, new, old], env=env,
                          capture_output=True, text=True, timeout=300)
    fx.check('models made by the worker\'s venv', proc.returncode == 0, proc.stderr[-800:])
    bad = os.path.join(fx.TEST, 'not_a_model.pth')
    with open(bad, 'w') as f:
        f.write('not a model')
    return new, old, bad


def photo_image():
    image = Gimp.Image.new(160, 120, Gimp.ImageBaseType.RGB)
    photo = fx.new_layer(image, 'photo', 128, 96, fx.content_pixels(128, 96))
    photo.set_offsets(16, 12)
    image.set_selected_layers([photo])
    return image, photo


def run_trained(image, photo, path):
    model = Gio.File.new_for_path(path) if path else None
    return fx.run_plugin(image, photo, method='trained', trained_model=model)


new_model, old_model, bad_model = make_models()
for label, path in (('trained (nst_core train layout)', new_model),
                    ('trained (old pytorch/examples layout)', old_model)):
    image, photo = photo_image()
    before = fx.pixels(photo)
    st, msg, dt = run_trained(image, photo, path)
    print('TIME %s %.1f s' % (label, dt), flush=True)
    fx.check('%s: SUCCESS' % label, st == S.SUCCESS, '(%s) %s' % (st, msg))
    layers = image.get_layers()
    names = [layer.get_name() for layer in layers]
    want = 'Neural Style (%s)' % os.path.basename(path)
    fx.check('%s: exactly one new layer, above the photo, named %r' % (label, want),
             names == [want, 'photo'], names)
    if len(layers) == 2:
        new = layers[0]
        fx.check('%s: the photo\'s size and offsets' % label,
                 (new.get_width(), new.get_height(), tuple(new.get_offsets()[1:])) ==
                 (128, 96, (16, 12)), (new.get_width(), new.get_height(), new.get_offsets()))
        got = fx.pixels(new)
        fx.check('%s: alpha is the photo\'s alpha' % label, got[3::4] == before[3::4])
        diff = fx.mean_abs_diff(got, before)
        fx.check('%s: pixels differ from the photo' % label, diff > 8, 'mean |diff| %.1f' % diff)
        fx.save_raw(label.split(' ')[0] + ('_old' if 'old' in label else ''), new)
    fx.check('%s: the photo is untouched' % label, fx.pixels(photo) == before)
    fx.check('%s: job folder removed' % label, fx.job_dirs() == [], fx.job_dirs())
    image.delete()

# GIMP itself refuses a file argument of action OPEN that is not an existing file (a calling
# error, 'This value is out of range'), before the plug-in runs; the plug-in's own message is
# for what passes that check
for label, path, status, words in (
        ('trained, no model chosen', None, S.EXECUTION_ERROR, 'Choose a trained model'),
        ('trained, model missing', os.path.join(fx.TEST, 'gone.pth'), S.CALLING_ERROR, ''),
        ('trained, a folder as the model', fx.TEST, S.CALLING_ERROR, ''),
        ('trained, not a model', bad_model, S.EXECUTION_ERROR,
         'choose another "Trained model" file')):
    image, photo = photo_image()
    st, msg, dt = run_trained(image, photo, path)
    fx.check('%s: error status' % label, st == status, '(%s) %s' % (st, msg))
    fx.check('%s: message says %r' % (label, words), words in (msg or ''), repr(msg))
    if words == 'Choose a trained model':
        # it named a shell command ("python -m nst_core train") to a GIMP user
        fx.check('%s: the message speaks GIMP, not a command line' % label,
                 'python -m' not in msg and '"Trained model"' in msg, repr(msg))
    fx.check('%s: no layer added' % label, len(image.get_layers()) == 1,
             [layer.get_name() for layer in image.get_layers()])
    fx.check('%s: job folder removed' % label, fx.job_dirs() == [], fx.job_dirs())
    image.delete()

fx.finish()
