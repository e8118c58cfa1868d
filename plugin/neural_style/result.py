"""The result in the image: where the new layer goes, and its insertion as one undo step."""
import gi
gi.require_version('Gimp', '3.0')
from gi.repository import Gimp  # noqa: E402

import pixels  # noqa: E402
import probe  # noqa: E402
import style_choice  # noqa: E402


def _layer_type(image):
    if image.get_base_type() == Gimp.ImageBaseType.GRAY:
        return Gimp.ImageType.GRAYA_IMAGE
    return Gimp.ImageType.RGBA_IMAGE


def _top_level_in(parent, item):
    """item, or the group holding it, that is a child of parent (None: the image's top
    level); None when item is not inside parent."""
    while item is not None:
        up = item.get_parent()
        if (up is None and parent is None) or (up is not None and parent is not None and
                                                up.get_id() == parent.get_id()):
            return item
        item = up
    return None


def place(image, content, styles):
    """(parent, position) for the result: in the photo's group (its mode, mask and offsets
    apply to the result as to the photo), directly above the topmost of the photo, of the
    style layers that share that group (a painting added with File > Open as Layers lands on
    top of the photo and would cover a result put right above the photo), and of the earlier
    results in that group (a new result put under them was invisible). Style layers of
    other images, or outside the photo's group, do not move it."""
    parent = content.get_parent()
    position = image.get_item_position(content)
    for layer in styles:
        if layer.get_image().get_id() != image.get_id():
            continue
        sibling = _top_level_in(parent, layer)
        if sibling is not None:
            position = min(position, image.get_item_position(sibling))
    siblings = parent.get_children() if parent is not None else image.get_layers()
    for layer in siblings[:position]:
        if style_choice.is_result(layer):
            position = min(position, image.get_item_position(layer))
    return parent, position


def insert(image, content, name, data, where, style_names=()):
    """The one change to the image, as one undo step: a new layer at `where` (see place),
    the content layer's size and offsets, masked by the selection if there is one.

    The layer is made whole (pixels, offsets, mask) while it belongs to no image, and
    inserting it is the last call: GIMP's Cancel kills the plug-in at any moment, and a kill
    before the insert leaves the image as it was, one after it leaves the complete result
    (tests/gimp/faults_test.py, kill at before-insert / after-insert). Writing the buffer of
    a layer not yet inserted works in GIMP 3.0 and 3.2."""
    w, h = content.get_width(), content.get_height()
    layer = Gimp.Layer.new(image, name, w, h, _layer_type(image), 100.0, Gimp.LayerMode.NORMAL)
    _, x, y = content.get_offsets()
    layer.set_offsets(x, y)                  # before the mask: the selection is cut at them
    pixels.write(layer, data)
    if not Gimp.Selection.is_empty(image):
        layer.add_mask(layer.create_mask(Gimp.AddMaskType.SELECTION))
    style_choice.mark_result(layer, style_names)
    probe.kill('before-insert')
    # the group opens only now: a kill before this leaves no open (or empty) undo step
    image.undo_group_start()
    try:
        image.insert_layer(layer, where[0], where[1])
        probe.kill('after-insert')
        layer.update(0, 0, w, h)
    finally:
        image.undo_group_end()
    return layer
