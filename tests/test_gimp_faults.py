"""The fault matrix in real GIMP 3 (docs/faults.md): tests/gimp/faults_test.py in gimp-console,
through the same chroot harness as tests/test_gimp.py."""
import pytest

from test_gimp import RUN, run_harness

SCRIPT = RUN.parent / 'faults_test.py'


@pytest.mark.slow
@pytest.mark.gimp
def test_faults_in_real_gimp():
    """Odd layers succeed; broken workers, configs and cancels leave the image byte-identical
    and no job folder behind."""
    run_harness('faults in GIMP', BATCH_SCRIPT=str(SCRIPT), GUI='0')
