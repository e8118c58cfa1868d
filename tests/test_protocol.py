import json

import pytest
from hypothesis import given, settings, strategies as st

import nst_protocol as protocol


def _job(**over):
    job = {'protocol': 1, 'content': {'path': 'c.rgba', 'width': 4, 'height': 3},
           'styles': [{'path': 's.rgba', 'width': 2, 'height': 2, 'weight': 2}],
           'output': {'path': 'out.rgba'}, 'options': {'size': 64}}
    job.update(over)
    return job


def test_parse_resolves_relative_paths(tmp_path):
    job = protocol.parse_job(_job(), str(tmp_path))
    assert job.content.path == str(tmp_path / 'c.rgba')
    assert job.content.nbytes == 4 * 3 * 4
    assert job.styles[0].weight == 2.0
    assert job.output == str(tmp_path / 'out.rgba')
    assert job.options == {'size': 64}


def test_job_round_trips_through_json(tmp_path):
    job = protocol.parse_job(_job(), str(tmp_path))
    path = protocol.write_job(job, str(tmp_path))
    again = protocol.read_job(path)
    assert again == job


@pytest.mark.parametrize('change, words', [
    ({'protocol': 2}, 'protocol version'),
    ({'content': {'path': 'c', 'width': 0, 'height': 3}}, 'positive integers'),
    ({'content': {'path': 'c', 'width': True, 'height': 3}}, 'positive integers'),
    ({'styles': []}, 'non-empty list'),
    ({'styles': [{'path': 's', 'width': 1, 'height': 1, 'weight': -1}]}, 'weight'),
    ({'styles': [{'path': 's', 'width': 1, 'height': 1, 'weight': 0}]}, 'not all be zero'),
    ({'output': {}}, 'output.path'),
    ({'options': []}, 'options must be an object'),
])
def test_invalid_jobs_are_refused_with_a_reason(change, words):
    with pytest.raises(protocol.JobError, match=words):
        protocol.parse_job(_job(**change))


def test_read_job_reports_missing_and_broken_files(tmp_path):
    with pytest.raises(protocol.JobError, match='cannot read job file'):
        protocol.read_job(str(tmp_path / 'nope.json'))
    bad = tmp_path / 'job.json'
    bad.write_text('{"protocol": 1,')
    with pytest.raises(protocol.JobError, match='not valid JSON'):
        protocol.read_job(str(bad))


def test_buffer_size_is_checked(tmp_path):
    buf = protocol.Buffer(str(tmp_path / 'b.rgba'), 2, 2)
    (tmp_path / 'b.rgba').write_bytes(b'\0' * 15)
    with pytest.raises(protocol.JobError, match='holds 15 bytes, expected 16'):
        protocol.read_buffer(buf)
    (tmp_path / 'b.rgba').write_bytes(b'\1' * 16)
    assert protocol.read_buffer(buf) == b'\1' * 16


# ---- masks (styles by region): one byte a pixel, style masks at the content's size, a
# painting's mask at the painting's

def _masked(**over):
    job = _job(style_masks=[{'path': 'm0.grey', 'width': 4, 'height': 3}, None])
    job['styles'] = [dict(job['styles'][0], painting_mask={'path': 'p0.grey', 'width': 2,
                                                           'height': 2}),
                     {'path': 's1.rgba', 'width': 5, 'height': 1}]
    job.update(over)
    return job


def test_masks_round_trip_through_json(tmp_path):
    job = protocol.parse_job(_masked(), str(tmp_path))
    sky, none = job.style_masks
    assert none is None and (sky.width, sky.height, sky.nbytes) == (4, 3, 12)
    assert sky.bytes_per_pixel == protocol.MASK_BYTES_PER_PIXEL == 1
    painting = job.styles[0].painting_mask
    assert (painting.path, painting.nbytes) == (str(tmp_path / 'p0.grey'), 4)
    assert job.styles[1].painting_mask is None
    assert [b.path for b in job.buffers()] == [str(tmp_path / n) for n in (
        'c.rgba', 's.rgba', 's1.rgba', 'p0.grey', 'm0.grey')]
    again = protocol.read_job(protocol.write_job(job, str(tmp_path)))
    assert again == job
    # the file names what nst_client ships to a remote worker, each once
    import nst_client
    data = json.loads((tmp_path / 'job.json').read_text())
    assert data['style_masks'][1] is None and 'painting_mask' not in data['styles'][1]
    assert nst_client.job_files(_masked()) == ['c.rgba', 's.rgba', 's1.rgba', 'p0.grey',
                                               'm0.grey']


def test_a_job_without_masks_writes_none():
    for masks in (None, [], [None, None]):
        job = protocol.parse_job(_job())
        job.style_masks = masks
        assert 'style_masks' not in job.to_json()
        assert 'painting_mask' not in job.to_json()['styles'][0]


def test_a_mask_buffer_is_read_at_one_byte_a_pixel(tmp_path):
    buf = protocol.mask_buffer(str(tmp_path / 'm.grey'), 4, 3)
    (tmp_path / 'm.grey').write_bytes(bytes(range(12)))
    assert protocol.read_buffer(buf) == bytes(range(12))
    (tmp_path / 'm.grey').write_bytes(b'\0' * 48)           # an RGBA buffer by mistake
    with pytest.raises(protocol.JobError, match=r'holds more than 12 bytes, expected 12 '
                                                r'\(4x3 8-bit grey mask\)'):
        protocol.read_buffer(buf)


@pytest.mark.parametrize('change, words', [
    ({'style_masks': [{'path': 'm', 'width': 3, 'height': 4}]},
     r'style_masks\[0\] is 3x4, not 4x3 as the content'),
    ({'style_masks': [None, None, {'path': 'm', 'width': 4, 'height': 3}]},
     'style_masks must be a list of at most 2'),
    ({'style_masks': {'path': 'm', 'width': 4, 'height': 3}}, 'style_masks must be a list'),
    ({'style_masks': ['m.grey']}, r'style_masks\[0\] must be an object'),
    ({'styles': [{'path': 's', 'width': 2, 'height': 2,
                  'painting_mask': {'path': 'p', 'width': 2, 'height': 3}}]},
     r'styles\[0\].painting_mask is 2x3, not 2x2 as its painting'),
])
def test_bad_masks_are_refused_with_a_reason(change, words):
    with pytest.raises(protocol.JobError, match=words):
        protocol.parse_job(_masked(**change))


def test_a_trained_job_takes_one_style_mask_without_styles():
    mask = {'path': 'm', 'width': 4, 'height': 3}
    job = protocol.parse_job(_job(styles=[], options={'method': 'trained'},
                                  style_masks=[mask]))
    assert job.styles == [] and job.style_masks[0].nbytes == 12
    with pytest.raises(protocol.JobError, match='at most 1'):
        protocol.parse_job(_job(styles=[], options={'method': 'trained'},
                                style_masks=[mask, mask]))


def test_atomic_write_leaves_no_part_file(tmp_path):
    path = str(tmp_path / 'out.rgba')
    protocol.write_buffer_atomic(path, b'abcd')
    assert open(path, 'rb').read() == b'abcd'
    assert [p.name for p in tmp_path.iterdir()] == ['out.rgba']


def test_events_round_trip():
    line = protocol.encode_event('progress', fraction=0.5, stage='Scale 1/2', eta=3.0)
    assert protocol.parse_event(line) == {'event': 'progress', 'fraction': 0.5,
                                          'stage': 'Scale 1/2', 'eta': 3.0}


@pytest.mark.parametrize('line', ['', 'garbage', '[1]', '{"fraction": 1}',
                                  '{"event": "progress", "fraction": 2}',
                                  '{"event": "error"}', '{"event": "progress"'])
def test_bad_event_lines_raise_protocol_error(line):
    with pytest.raises(protocol.ProtocolError):
        protocol.parse_event(line)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_event_parser_never_crashes_on_arbitrary_text(text):
    try:
        event = protocol.parse_event(text)
    except protocol.ProtocolError:
        return
    assert isinstance(event['event'], str)


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                     | st.text(max_size=5),
                     lambda kids: st.lists(kids, max_size=3)
                     | st.dictionaries(st.text(max_size=8), kids, max_size=4), max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(['protocol', 'content', 'styles', 'output', 'options',
                                        'style_masks', 'x']), _json))
def test_job_parser_gives_job_or_job_error(data):
    try:
        job = protocol.parse_job(data)
    except protocol.JobError:
        return
    assert job.content.width > 0 and job.styles


def test_format_eta():
    assert protocol.format_eta(None) == ''
    assert protocol.format_eta(35.2) == '35 s left'
    assert protocol.format_eta(600) == '10 min left'


def test_protocol_module_needs_only_the_standard_library():
    import ast
    import sys
    tree = ast.parse(open(protocol.__file__).read())
    names = {a.name.split('.')[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
             for a in n.names}
    names |= {n.module.split('.')[0] for n in ast.walk(tree)
              if isinstance(n, ast.ImportFrom) and n.module}
    assert names <= set(sys.stdlib_module_names), names - set(sys.stdlib_module_names)


def test_hello_reads_back_and_is_ours_only_for_our_key_and_version():
    line = protocol.encode_hello('1.2', 'k1', 4242, False) + '\n'
    hello = protocol.parse_hello(line.encode())
    assert hello == {'event': 'hello', 'protocol': protocol.PROTOCOL_VERSION, 'version': '1.2',
                     'key': 'k1', 'pid': 4242, 'busy': False}
    assert protocol.is_our_hello(hello, 'k1')
    assert not protocol.is_our_hello(hello, 'k2')
    assert not protocol.is_our_hello(dict(hello, protocol=2), 'k1')
    assert not protocol.is_our_hello(dict(hello, pid=True), 'k1')
    for bad in (b'[]', b'{"event": "progress"}', b'not json'):
        with pytest.raises(ValueError):
            protocol.parse_hello(bad)


def test_a_request_names_an_absolute_job_and_its_owner(tmp_path):
    line = protocol.encode_request('job.json', {'pid': 7, 'start': 9})
    assert line.endswith('\n') and line.count('\n') == 1
    job, owner, bye = protocol.parse_request(line)
    assert job == str(tmp_path.cwd() / 'job.json') and owner == {'pid': 7, 'start': 9}
    assert not bye
    assert protocol.parse_request('{"bye": true}') == (None, None, True)
    for bad in ('not json', '[1]', '{"job": 3}', '{"job": "relative.json"}'):
        assert protocol.parse_request(bad)[0] is None, bad


def test_the_private_folder_is_made_0700_and_anything_else_is_named(tmp_path):
    import os
    folder = tmp_path / 'private'
    assert protocol.private_folder(str(folder)) is None
    assert folder.stat().st_mode & 0o777 == 0o700
    folder.chmod(0o750)
    assert protocol.private_folder(str(folder)) == 'has mode 0750; it must be private (0700)'
    (tmp_path / 'link').symlink_to(folder)
    assert 'symbolic link' in protocol.private_folder(str(tmp_path / 'link'))
    (tmp_path / 'file').write_text('')
    assert protocol.private_folder(str(tmp_path / 'file')) == 'is not a folder'
    assert protocol.private_folder(str(tmp_path / 'none'), create=False).startswith(
        'cannot be read')
    assert os.path.isdir(folder)


def test_paintings_are_sent_at_the_side_the_method_reads_them_at():
    from nst_core import fast
    # Fast's predictor reads a painting at its short side: the contract sends twice that
    assert protocol.STYLE_SHORT_SIDE['fast'] >= 2 * fast.PREDICTOR_SIZE
    assert protocol.style_side('fast', 2000, 1000) == 1024
    assert protocol.style_side('fast', 600, 400) is None
    assert protocol.style_side('quality', 4000, 3000) is None


def test_rest_travels_as_a_word(tmp_path):
    job = protocol.parse_job(_masked(style_masks=[
        {'path': 'm0.grey', 'width': 4, 'height': 3}, protocol.REST]), str(tmp_path))
    assert job.style_masks[1] == protocol.REST
    assert protocol.read_job(protocol.write_job(job, str(tmp_path))) == job
    import nst_client
    assert nst_client.job_files(job.to_json())[-1].endswith('m0.grey')
    with pytest.raises(protocol.JobError):
        protocol.parse_job(_masked(style_masks=[None, 'sky']), str(tmp_path))
