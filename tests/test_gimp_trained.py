"""The Trained model method in real GIMP 3: tests/gimp/trained_test.py in gimp-console, through
the same chroot harness as tests/test_gimp.py."""
import pytest

from test_gimp import RUN, run_harness

SCRIPT = RUN.parent / 'trained_test.py'


@pytest.mark.slow
@pytest.mark.gimp
def test_trained_method_in_real_gimp():
    """A trained network file (ours and an old pytorch/examples one) adds one layer, without a
    style layer; no file, a missing file or a wrong one is a GIMP message and no layer."""
    run_harness('trained method in GIMP', BATCH_SCRIPT=str(SCRIPT), GUI='0')
