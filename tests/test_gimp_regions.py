"""Styles by region (issue 24) in real GIMP 3: tests/gimp/regions_test.py in GUI gimp under
Xvfb, through the same chroot harness as tests/test_gimp.py."""
import pytest

from test_gimp import RUN, run_harness

SCRIPT = RUN.parent / 'regions_test.py'


@pytest.mark.slow
@pytest.mark.gimp
def test_styles_by_region_in_real_gimp():
    """Two paintings and a channel for the sky, one OK: one layer, the sky in one painting
    and the rest in the other (Fast, real weights), one Ctrl+Z; the dialog's regions;
    Filters > Repeat with the channel and without it; a deleted, missing or foreign channel
    and an "Everywhere else" of nothing refused before any work."""
    run_harness('styles by region in GIMP', GUI_SCRIPT=str(SCRIPT), BATCH='0')
