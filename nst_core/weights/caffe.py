"""Caffe-trained VGGs take BGR, 0..255, minus the ImageNet mean; nst_core's VGG takes RGB
normalised the torchvision way. That preprocessing is affine per channel, so it folds into
conv1_1 once, at conversion, and every cached VGG takes the same input.

The fold is exact except where conv1_1's zero padding touches the border: a zero of
normalised input is the ImageNet mean colour, i.e. 255*mean - caffe_mean = (-0.005, -0.50,
-0.41) in Caffe units (RGB) instead of 0. That is half a grey level in one-pixel border rows,
far below anything a style loss notices.
"""
# Keras' VGG-16 preprocessing ('caffe' mode): the mean its authors subtracted, in BGR.
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
TORCH_MEAN = (0.485, 0.456, 0.406)
TORCH_STD = (0.229, 0.224, 0.225)


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
