import torch

from nst_core import colour


def test_yiq_round_trip():
    x = torch.rand(2, 3, 8, 8)
    assert torch.allclose(colour.yiq_to_rgb(colour.rgb_to_yiq(x)), x, atol=1e-5)


def test_luminance_transfer_keeps_content_colour_and_stylised_luminance():
    torch.manual_seed(0)
    content = torch.rand(1, 3, 16, 16) * 0.5 + 0.25
    stylised = torch.rand(1, 3, 16, 16) * 0.5 + 0.25
    out = colour.luminance_transfer(stylised, content)
    yiq_out, yiq_c, yiq_s = (colour.rgb_to_yiq(t) for t in (out, content, stylised))
    assert torch.allclose(yiq_out[:, 0], yiq_s[:, 0], atol=1e-4)
    assert torch.allclose(yiq_out[:, 1:], yiq_c[:, 1:], atol=1e-4)


def test_grey_content_gives_grey_result():
    content = torch.full((1, 3, 8, 8), 0.5)
    out = colour.luminance_transfer(torch.rand(1, 3, 8, 8), content)
    assert (out.max(1).values - out.min(1).values).max() < 1e-4


def test_histogram_matching_matches_mean_and_covariance():
    torch.manual_seed(1)
    src = torch.rand(1, 3, 32, 32) * torch.tensor([0.2, 0.6, 0.3]).view(1, 3, 1, 1)
    ref = torch.rand(1, 3, 32, 32) * 0.4 + 0.3
    ref[:, 1] = ref[:, 0] * 0.5 + 0.2      # correlated channels
    out = colour.match_histogram(src, ref)
    _, mu_o, cov_o = colour._stats(out.double())
    _, mu_r, cov_r = colour._stats(ref.double())
    assert torch.allclose(mu_o, mu_r, atol=1e-3)
    assert torch.allclose(cov_o, cov_r, atol=2e-3)
