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


def test_match_colours_targets_the_weighted_mixture_of_styles():
    torch.manual_seed(2)
    src = torch.rand(1, 3, 40, 40) * 0.5
    # colours well inside 0..1, so the result's clamp leaves its statistics alone
    red = torch.rand(1, 3, 20, 20) * torch.tensor([0.1, 0.05, 0.05]).view(1, 3, 1, 1) \
        + torch.tensor([0.6, 0.4, 0.4]).view(1, 3, 1, 1)
    blue = torch.rand(1, 3, 30, 30) * 0.1 + torch.tensor([0.35, 0.4, 0.6]).view(1, 3, 1, 1)
    # the mixture 3:1 is the pixels of red three times over, of blue once, pooled
    pooled = torch.cat([red.flatten(2)] * 3 * 9 + [blue.flatten(2)] * 4, 2)
    # 3 x 9 copies of 400 red pixels and 4 of 900 blue ones: 3:1 by pixel count
    out = colour.match_colours(src, [red, blue], [3, 1])
    _, mu_o, cov_o = colour._stats(out.double())
    _, mu_p, cov_p = colour._stats(pooled.double().unsqueeze(-1))
    assert torch.allclose(mu_o, mu_p, atol=2e-3)
    assert torch.allclose(cov_o, cov_p, atol=3e-3)
    one = colour.match_colours(src, [red, blue], [1, 0])
    assert torch.allclose(one, colour.match_histogram(src, red), atol=1e-6)
