import pytest

from nst_core import schedule


@pytest.mark.parametrize('final', [64, 200, 256, 512, 1000, 4096])
def test_scales_double_up_to_the_final_size(final):
    sizes = schedule.sizes(final)
    assert sizes[-1] == final
    assert sizes[0] >= min(final, schedule.MIN_SIZE)
    for a, b in zip(sizes, sizes[1:]):
        assert b == 2 * a or b == 2 * a + 1


def test_small_outputs_get_one_scale_with_the_coarse_step_count():
    (only,) = schedule.plan(100, 'normal')
    assert only.size == 100 and only.steps == schedule.PRESETS['normal'][0]


def test_presets_order_by_work():
    def work(preset, size):
        return sum(s.size ** 2 * s.steps for s in schedule.plan(size, preset))
    assert work('draft', 512) < work('normal', 512)
    # Best's layout takes Normal's steps (its difference is its loss, quality.RECIPES); the
    # octaves above it are refined longer
    assert work('best', 512) == work('normal', 512)
    assert work('normal', 2560) < work('best', 2560)


def test_coarse_scales_get_more_steps_than_the_final_one():
    plan = schedule.plan(400, 'normal')
    assert [s.size for s in plan] == [200, 400]
    assert plan[0].steps > plan[-1].steps


def test_iterations_override_the_final_scale_only():
    plan = schedule.plan(512, 'normal', iterations=7)
    assert plan[-1].steps == 7
    assert plan[0].steps == schedule.PRESETS['normal'][0]


@pytest.mark.parametrize('final, octaves', [(512, []), (1024, []), (1100, []), (1600, [800]),
                                            (2560, [1280]), (6000, [1500, 3000])])
def test_large_outputs_refine_every_octave_above_the_layout_below_their_own(final, octaves):
    plan = schedule.plan(final, 'normal')
    layout = [s for s in plan if not s.refine]
    assert [s.size for s in layout] == [256, schedule.LAYOUT_SIDE]
    assert [s.size for s in plan if s.refine] == octaves
    assert all(s.steps == schedule.REFINE['normal'] for s in plan if s.refine)
    assert plan[:len(layout)] == layout            # the layout first


def test_iterations_set_the_layouts_finest_scale_also_under_octaves():
    plan = schedule.plan(4096, 'draft', iterations=3)
    assert [s.steps for s in plan if not s.refine][-1] == 3
    assert [s.steps for s in plan if s.refine] == [schedule.REFINE['draft']] * 2
