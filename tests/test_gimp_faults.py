"""The fault matrix in real GIMP 3 (docs/faults.md): tests/gimp/faults_test.py in gimp-console,
through the same chroot harness as tests/test_gimp.py."""
import os
import subprocess
import time

import pytest

from test_gimp import RUN, _cannot_run_gimp

SCRIPT = RUN.parent / 'faults_test.py'


@pytest.mark.slow
@pytest.mark.gimp
def test_faults_in_real_gimp():
    """Odd layers succeed; broken workers, configs and cancels leave the image byte-identical
    and no job folder behind."""
    reason = _cannot_run_gimp()
    if reason:
        pytest.skip(reason)
    t0 = time.time()
    env = dict(os.environ, BATCH_SCRIPT=str(SCRIPT), GUI='0')
    proc = subprocess.run(['bash', str(RUN)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=1800, env=env)
    out = proc.stdout
    print(out[-6000:])
    print('faults in GIMP took %.0f s' % (time.time() - t0))
    if proc.returncode == 2 and 'RESULT' not in out:
        pytest.fail('could not build the GIMP chroot:\n' + out[-3000:])
    failed = [line for line in out.splitlines() if line.startswith('FAIL')]
    assert proc.returncode == 0, '\n'.join(failed) or out[-3000:]
