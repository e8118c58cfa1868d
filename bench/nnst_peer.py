"""Run Kolkin et al.'s NNST-Opt (nkolkin13/NeuralNeighborStyleTransfer) on this project's
VGG-16 weights, for bench_quality.py's side-by-side rows. Its code is not part of this
repository: give the path of a checkout (the `fetch` tool's mirror, checked out).

    python bench/nnst_peer.py --repo PATH content.jpg style.jpg out.png [--size 512]

Their defaults (styleTransfer.py at 512 px: 4 scales, 200 Adam steps each plus the final
feature-splitting pass, alpha 0.75, flipped style copies, their colour matching) on the CPU.
Their network is torchvision's VGG-16 with ImageNet's normalisation in front; ours
(vgg16-caffe, nst_core/weights) is loaded into the same layers, so both methods see the same
features.
"""
import argparse
import sys
import time
import types


def with_our_weights(net):
    """torchvision's VGG-16 `net` with this project's vgg16-caffe weights in its features."""
    from nst_core.weights import load_vgg
    _, state = load_vgg('vgg16-caffe', log=lambda m: None)
    net.features.load_state_dict({k[len('features.'):]: v for k, v in state.items()
                                  if k.startswith('features.')})
    return net


def stylize_nnst(repo, content, style, size=512):
    """NNST-Opt's picture of two PIL images, at `size` px on the longest side."""
    import torch
    from torchvision import models
    from nst_core import imageio
    # their misc.py imports imageio's imread for file loading, which this does itself
    sys.modules.setdefault('imageio', types.SimpleNamespace(imread=None, imwrite=None))
    vgg16 = models.vgg16             # theirs asks models.vgg16 for ImageNet weights
    models.vgg16 = lambda **_: with_our_weights(vgg16(weights=None))
    sys.path.insert(0, repo)
    from pretrained.vgg import Vgg16Pretrained
    from utils import misc
    from utils.stylize import produce_stylization
    misc.USE_GPU = False
    if not torch.cuda.is_available():
        # their colour matching (utils/zca.py) moves a matrix to the GPU whatever USE_GPU says
        torch.Tensor.cuda = lambda self, *args, **kwargs: self
    torch.manual_seed(0)

    def tensor(img):
        return imageio.to_tensor(imageio.resize(img, imageio.working_size(img.size, size)))
    cnn = Vgg16Pretrained()
    out = produce_stylization(tensor(content), tensor(style),
                              lambda x, y, z: cnn.forward(x, inds=y, concat=z), max_iter=200,
                              lr=2e-3, content_weight=0.25, max_scls=4, flip_aug=True,
                              content_loss=False, dont_colorize=False)
    return imageio.to_pil(out.detach().clamp(0, 1))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--repo', required=True)
    p.add_argument('--size', type=int, default=512)
    p.add_argument('content')
    p.add_argument('style')
    p.add_argument('output')
    args = p.parse_args()
    from nst_core import imageio
    t0 = time.process_time()
    out = stylize_nnst(args.repo, imageio.open_image(args.content),
                       imageio.open_image(args.style), args.size)
    out.save(args.output)
    print('cpu %.1f' % (time.process_time() - t0))


if __name__ == '__main__':
    main()
