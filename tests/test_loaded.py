"""The one cache of loaded networks (nst_core.loaded): one policy, owned by who runs jobs."""
import pytest
import torch
from PIL import Image

from nst_core import loaded, trained
from nst_core.loaded import LoadedModels
from nst_core.models.transformer import TransformerNet
from nst_core.api import stylize_with


def tensor_of(n_bytes):
    return torch.zeros(n_bytes // 4)


def test_the_least_recently_used_goes_first_past_the_budget():
    models = LoadedModels(budget=1000)
    models.get('a', lambda: tensor_of(400))
    models.get('b', lambda: tensor_of(400))
    models.get('a', lambda: pytest.fail('kept: not loaded again'))      # a is now the newest
    models.get('c', lambda: tensor_of(400))
    assert 'a' in models and 'c' in models and 'b' not in models
    assert models.held() == 800


def test_the_newest_stays_even_alone_over_budget_and_none_is_not_kept():
    models = LoadedModels(budget=100)
    models.get('big', lambda: tensor_of(400))
    assert 'big' in models
    loads = []
    models.get(None, lambda: loads.append(1))
    models.get(None, lambda: loads.append(1))
    assert loads == [1, 1] and len(models) == 1


def test_a_module_counts_its_parameters_and_buffers():
    net = torch.nn.BatchNorm2d(8)           # 2 x 8 parameters, 2 x 8 + 1 buffers
    assert loaded.size_of(net) == 16 * 4 + 16 * 4 + 8
    assert loaded.size_of((net, ['a line logged'])) == loaded.size_of(net)


@pytest.fixture
def trained_file(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / 'tiny.pth'
    torch.save(TransformerNet().state_dict(), path)
    return path


def test_two_jobs_share_the_loaded_network_until_the_cache_is_cleared(trained_file,
                                                                       monkeypatch):
    loads = []
    real_load = trained.load_model
    monkeypatch.setattr(trained, 'load_model', lambda p: loads.append(p) or real_load(p))
    models = LoadedModels()
    photo = Image.new('RGB', (40, 30), (120, 60, 30))
    job = dict(method='trained', trained_model=str(trained_file), size=0, device='cpu')
    first = stylize_with(models, photo, [], **job)
    second = stylize_with(models, photo, [], **job)
    assert len(loads) == 1 and len(models) == 1          # the second job loaded nothing
    assert first.tobytes() == second.tobytes()
    models.clear()
    assert len(models) == 0
    stylize_with(models, photo, [], **job)
    assert len(loads) == 2                               # cleared: loaded again


def test_a_runner_s_cache_is_its_own(trained_file, monkeypatch):
    monkeypatch.setattr(loaded, 'PROCESS', LoadedModels())
    models = LoadedModels()
    photo = Image.new('RGB', (40, 30), (120, 60, 30))
    stylize_with(models, photo, [], method='trained', trained_model=str(trained_file), size=0,
                 device='cpu')
    assert len(models) == 1 and len(loaded.PROCESS) == 0


def test_stylize_with_refuses_what_stylize_does_not_take():
    with pytest.raises(TypeError):
        stylize_with(LoadedModels(), Image.new('RGB', (8, 8)), [], no_such_option=1)
