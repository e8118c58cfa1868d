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
    def work(preset):
        return sum(s.size ** 2 * s.steps for s in schedule.plan(512, preset))
    assert work('draft') < work('normal') < work('best')


def test_coarse_scales_get_more_steps_than_the_final_one():
    plan = schedule.plan(1024, 'normal')
    assert [s.size for s in plan] == [256, 512, 1024]
    assert plan[0].steps > plan[-1].steps


def test_iterations_override_the_final_scale_only():
    plan = schedule.plan(512, 'normal', iterations=7)
    assert plan[-1].steps == 7
    assert plan[0].steps == schedule.PRESETS['normal'][0]


def test_scales_above_the_content_side_are_not_held_to_the_photo_itself():
    assert all(s.photo for s in schedule.plan(schedule.CONTENT_SIDE, 'normal'))
    plan = schedule.plan(4 * schedule.CONTENT_SIDE, 'best')
    assert [s.photo for s in plan] == [s.size <= schedule.CONTENT_SIDE for s in plan]
    assert plan[0].photo and not plan[-1].photo
