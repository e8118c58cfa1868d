"""Which painting Neural Style offers and runs with, and which layers it made itself.

GIMP keeps a filter's last values for its dialog and for Filters > Repeat, but GIMP 3.0
cannot keep a layer among them ("couldn't serialize property ...::style-layer of type
GimpLayer"): the dialog then fell back to the topmost other layer of the image, which after
one run is the previous result, and Repeat had no style at all. So the plug-in remembers
the style layers itself, where GIMP keeps last values: on the photo's image (a parasite,
kept in its XCF, which wins) and in the profile's plug-in-settings folder (for any image).
A layer is remembered by what identifies it across GIMP sessions too: its image's file and
its tattoo, and its size and a fingerprint of its pixels (the same painting opened again,
perhaps under another name), besides its id.

The channels that say where each style paints (issue 24) cannot be kept either: they are
remembered beside the style layers, by their tattoo and name in the photo's image (a channel
belongs to its image: another image's channel of that tattoo is another channel).

The layers this filter made carry a parasite (RESULT_PARASITE), so that the dialog never
offers one as the style unless the user picked it, and a new result goes above the earlier
ones instead of under them.

Standard library and GIMP only; the pure parts (records, matching) are tested without GIMP
(tests/test_gimp.py).
"""
import json
import os
import re

RESULT_PARASITE = 'neural-style-result'
MEMORY_PARASITE = 'neural-style-styles'
MEMORY_FILE = 'neural-style-styles.json'
SLOTS = ('style-layer', 'style-layer-2', 'style-layer-3')
# each slot's region and channel arguments (options.REGION_SLOTS; tests/test_gimp.py checks)
REGION_ARGS = ('style-region', 'style-region-2', 'style-region-3')
CHANNEL_SLOTS = ('style-channel', 'style-channel-2', 'style-channel-3')
IN_CHANNEL = 'channel'
# results made before RESULT_PARASITE existed: "Neural Style (starry_night.jpg)", and the
# " #1" GIMP appends to a name already taken
LEGACY_RESULT = re.compile(r'^Neural Style \(.*\)( #\d+)?$')


class NotFound(Exception):
    """A remembered style layer (or channel) is not open any more; the message says which it
    was."""


# ---------------------------------------------------------------- records (no GIMP calls)

def describe_image(image_id, file_path, name):
    return {'id': image_id, 'file': file_path, 'name': name}


def record(layer_id, tattoo, name, width, height, image, same_image, result, fingerprint):
    """What identifies a style layer: in this session its id; in any session its image's
    file and its tattoo (both kept in an XCF), else its size and a fingerprint of its pixels
    (the painting opened again: File > Open names the layer "Background", Open as Layers
    after the file, and a name alone matched other layers of that name)."""
    return {'id': layer_id, 'tattoo': tattoo, 'name': name, 'width': width, 'height': height,
            'image': image, 'same_image': same_image, 'result': result,
            'fingerprint': fingerprint}


def channel_record(channel_id, tattoo, name, image):
    """What identifies a channel: its id in this session, its tattoo and name in its image
    (kept in an XCF), and that image."""
    return {'id': channel_id, 'tattoo': tattoo, 'name': name, 'image': image}


def encode(records, channels=None):
    """The text kept: the style layers' records and, if any, the channels' ({slot: record or
    None}; a version-1 reader without channels ignores them)."""
    data = {'version': 1, 'styles': records}
    if channels:
        data['channels'] = channels
    return json.dumps(data, sort_keys=True)


def _decoded(text):
    try:
        data = json.loads(text)
    except (TypeError, ValueError):
        return None
    if not isinstance(data, dict) or data.get('version') != 1 \
            or not isinstance(data.get('styles'), dict):
        return None
    return data


def decode(text):
    """{slot: record or None} from encode()'s text; {} for anything else."""
    data = _decoded(text)
    if data is None:
        return {}
    return {slot: rec for slot, rec in data['styles'].items()
            if slot in SLOTS and (rec is None or _valid(rec))}


def decode_channels(text):
    """{channel slot: record or None} from encode()'s text; {} for anything else."""
    data = _decoded(text)
    channels = data.get('channels') if data is not None else None
    if not isinstance(channels, dict):
        return {}
    return {slot: rec for slot, rec in channels.items()
            if slot in CHANNEL_SLOTS and (rec is None or _valid_channel(rec))}


def _valid_channel(rec):
    return isinstance(rec, dict) and isinstance(rec.get('name'), str) \
        and all(isinstance(rec.get(k), int) for k in ('id', 'tattoo')) \
        and isinstance(rec.get('image'), dict)


def same_image(rec_image, image_id, file_path):
    """Whether a record's image is this one: the same in this session, or the same file."""
    return rec_image.get('id') == image_id or bool(
        rec_image.get('file') and rec_image.get('file') == file_path)


def _valid(rec):
    return isinstance(rec, dict) and isinstance(rec.get('name'), str) \
        and all(isinstance(rec.get(k), int) for k in ('id', 'tattoo', 'width', 'height')) \
        and isinstance(rec.get('image'), dict) and isinstance(rec.get('fingerprint'), str)


def same_painting(rec, width, height, fingerprint):
    """A layer that is the remembered painting by what survives a new session and a new
    name: its size and the fingerprint of its pixels."""
    return (rec['width'], rec['height']) == (width, height) \
        and rec['fingerprint'] == fingerprint


def describe_record(rec):
    image = rec.get('image') or {}
    where = image.get('file') or image.get('name')
    return '"%s"%s' % (rec['name'], ' (image "%s")' % os.path.basename(where) if where else '')


# ---------------------------------------------------------------- GIMP

def _gimp():
    from gi.repository import Gimp
    return Gimp


def _image_file(image):
    f = image.get_file()
    return f.get_path() if f is not None else None


def all_layers(image):
    """Every layer of the image, groups' children included, top to bottom."""
    out, todo = [], list(image.get_layers())
    while todo:
        layer = todo.pop(0)
        out.append(layer)
        if layer.is_group():
            todo[0:0] = list(layer.get_children())
    return out


def is_result(layer):
    """Made by this filter (a result layer, or a copy of one)."""
    return layer.get_parasite(RESULT_PARASITE) is not None \
        or bool(LEGACY_RESULT.match(layer.get_name()))


def mark_result(layer, style_names):
    """Tag a new result layer (before it is inserted: no undo step of its own)."""
    Gimp = _gimp()
    data = json.dumps({'version': 1, 'styles': style_names}).encode()
    layer.attach_parasite(Gimp.Parasite.new(RESULT_PARASITE, Gimp.PARASITE_PERSISTENT,
                                            list(data)))


FINGERPRINT_ROWS = 5


def fingerprint(layer):
    """A digest of the layer's pixels: five of its rows at full resolution (a few kB even for
    a large painting; the same pixels always give the same digest). Not GEGL's shrunken
    reads: a 160 px layer read at 8 px came back all zeros in GIMP 3.2.6, so every layer of
    a size matched."""
    import hashlib
    from gi.repository import Gegl
    w, h = layer.get_width(), layer.get_height()
    buffer, digest = layer.get_buffer(), hashlib.sha256()
    for k in range(FINGERPRINT_ROWS):
        row = min(h - 1, (k + 1) * h // (FINGERPRINT_ROWS + 1))
        digest.update(bytes(buffer.get(Gegl.Rectangle.new(0, row, w, 1), 1.0,
                                       "R'G'B'A u8", Gegl.AbyssPolicy.CLAMP)))
    return digest.hexdigest()[:32]


def layer_record(layer, image):
    other = layer.get_image()
    return record(layer.get_id(), layer.get_tattoo(), layer.get_name(), layer.get_width(),
                  layer.get_height(),
                  describe_image(other.get_id(), _image_file(other), other.get_name()),
                  other.get_id() == image.get_id(), is_result(layer), fingerprint(layer))


def attached(channel, image):
    """Whether the channel is one of the image's channels now (a deleted channel stays valid
    while the undo history holds it)."""
    return channel is not None and channel.is_valid() and any(
        c.get_id() == channel.get_id() for c in image.get_channels())


def describe(image):
    return describe_image(image.get_id(), _image_file(image), image.get_name())


def remember(config, image):
    """The style layers of a run started from the dialog, and the channels chosen in the
    photo's image, where recall() and recall_channels() find them: on the photo's image and
    in the profile (as GIMP keeps last values)."""
    Gimp = _gimp()
    records = {}
    for slot in SLOTS:
        layer = config.get_property(slot)
        records[slot] = layer_record(layer, image) if layer is not None \
            and layer.is_valid() else None
    channels = {}
    for slot in CHANNEL_SLOTS:
        channel = config.get_property(slot)
        channels[slot] = channel_record(channel.get_id(), channel.get_tattoo(),
                                        channel.get_name(), describe(image)) \
            if attached(channel, image) else None
    text = encode(records, channels)
    image.attach_parasite(Gimp.Parasite.new(MEMORY_PARASITE, Gimp.PARASITE_PERSISTENT,
                                            list(text.encode())))
    folder = os.path.join(Gimp.directory(), 'plug-in-settings')
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, MEMORY_FILE)
    with open(path + '.part', 'w', encoding='utf-8') as f:
        f.write(text + '\n')
    os.replace(path + '.part', path)


def _recalled(image, read):
    """read(text) of this image's memory, else of the last run's in any image ({} none)."""
    parasite = image.get_parasite(MEMORY_PARASITE)
    if parasite is not None:
        found = read(bytes(parasite.get_data()).decode('utf-8', 'replace'))
        if found:
            return found
    Gimp = _gimp()
    try:
        with open(os.path.join(Gimp.directory(), 'plug-in-settings', MEMORY_FILE),
                  encoding='utf-8') as f:
            return read(f.read())
    except OSError:
        return {}


def recall(image):
    """{slot: record or None}: this image's, else the last run's in any image ({} none)."""
    return _recalled(image, decode)


def recall_channels(image):
    """{channel slot: record or None}, as recall() (find_channel keeps to this image's)."""
    return _recalled(image, decode_channels)


def find_channel(rec, image):
    """The channel of the photo's image a record names, or None: the very channel (same
    session), else the channel of the same tattoo and name (the XCF opened again); only
    where the record is of this image, and only a channel the image holds now."""
    Gimp = _gimp()
    if not same_image(rec['image'], image.get_id(), _image_file(image)):
        return None
    channel = None
    if Gimp.Item.id_is_channel(rec['id']):
        channel = Gimp.Channel.get_by_id(rec['id'])
    if channel is None or not attached(channel, image) or channel.get_name() != rec['name']:
        channel = image.get_channel_by_tattoo(rec['tattoo'])
    if channel is None or not attached(channel, image) or channel.get_name() != rec['name']:
        return None
    return channel


def find(rec, image, content=None):
    """The open layer a record names, or None: the very layer (same session), the layer of
    the same tattoo and name in the photo's image (an XCF opened again) or in an open image of
    the same file, else a layer of the same size and pixels (the painting opened again), in
    the photo's image first, then in the other open images; never the photo itself."""
    Gimp = _gimp()
    if Gimp.Item.id_is_layer(rec['id']):
        layer = Gimp.Layer.get_by_id(rec['id'])
        if layer is not None and layer.get_name() == rec['name'] \
                and layer.get_image().get_id() == rec['image'].get('id'):
            return layer
    images = list(Gimp.get_images())
    same_file = [im for im in images if rec['image'].get('file')
                 and _image_file(im) == rec['image']['file']]
    by_tattoo = ([image] if rec.get('same_image') else []) + same_file
    for im in by_tattoo:
        layer = im.get_layer_by_tattoo(rec['tattoo'])
        if layer is not None and layer.get_name() == rec['name']:
            return layer
    for im in [image] + [i for i in images if i.get_id() != image.get_id()]:
        for layer in all_layers(im):
            if (rec['width'], rec['height']) != (layer.get_width(), layer.get_height()) \
                    or (content is not None and layer.get_id() == content.get_id()) \
                    or (is_result(layer) and not rec.get('result')):
                continue
            if same_painting(rec, layer.get_width(), layer.get_height(), fingerprint(layer)):
                return layer
    return None


def guess(image, content):
    """A layer to offer when nothing is remembered: the topmost other layer of this image
    (where File > Open as Layers puts the painting), else the first layer of another open
    image; never one this filter made."""
    Gimp = _gimp()

    def usable(layer):
        return layer.get_id() != content.get_id() and not is_result(layer)

    for layer in image.get_layers():
        if usable(layer):
            return layer
    for other in Gimp.get_images():
        if other.get_id() != image.get_id():
            for layer in other.get_layers():
                if usable(layer):
                    return layer
    return None


def offer(config, image, content):
    """Set the dialog's style layers: those last run with, where they are still open (the
    first one else the guess); and the channels last chosen in this image (else the channel
    given, if it is this image's)."""
    records = recall(image)
    for slot in SLOTS:
        rec = records.get(slot)
        layer = find(rec, image, content) if rec else None
        if layer is None and slot == SLOTS[0]:
            current = config.get_property(slot)
            layer = current if current is not None and current.is_valid() \
                and not is_result(current) else guess(image, content)
        config.set_property(slot, layer)
    channels = recall_channels(image)
    for slot in CHANNEL_SLOTS:
        rec = channels.get(slot)
        channel = find_channel(rec, image) if rec else None
        if channel is None:
            current = config.get_property(slot)
            channel = current if attached(current, image) else None
        config.set_property(slot, channel)


def restore(config, image, content):
    """Filters > Repeat: the style layers the last run used, or NotFound saying which is not
    open any more."""
    records = recall(image)
    if not records:
        raise NotFound(None)
    for slot in SLOTS:
        rec = records.get(slot)
        layer = find(rec, image, content) if rec else None
        if rec and layer is None:
            raise NotFound(describe_record(rec))
        config.set_property(slot, layer)


def restore_channels(config, image):
    """Filters > Repeat: the channels the last run chose in this image, or NotFound naming the
    first that a style paints in and that is not in the image any more."""
    records = recall_channels(image)
    for region_arg, slot in zip(REGION_ARGS, CHANNEL_SLOTS):
        rec = records.get(slot)
        channel = find_channel(rec, image) if rec else None
        if rec and channel is None and config.get_property(region_arg) == IN_CHANNEL:
            raise NotFound('"%s"' % rec['name'])
        config.set_property(slot, channel)
