"""The judge (../shared/tools/judge) run over a benchmark's rows, for the benchmarks that
score pictures: it measures, it is never a loss."""
import json
import subprocess
import sys
from pathlib import Path

JUDGE = Path(__file__).resolve().parent.parent.parent / 'shared' / 'tools' / 'judge' / 'judge'
KEYS = ('style_embed_ratio_gray', 'style_embed_ratio', 'edge_f', 'color_swd_ratio')


def judge(rows, work):
    """Adds the judge's figures (KEYS) to each row (a dict with content, style and output
    paths); False when the judge is not there."""
    if not JUDGE.exists():
        print('judge not found at %s: no style or edge figures' % JUDGE)
        return False
    tsv = Path(work) / 'judge_rows.tsv'
    tsv.write_text(''.join('%s\t%s\t%s\t%d\n' % (r['content'], r['style'], r['output'], i)
                           for i, r in enumerate(rows)))
    proc = subprocess.run([str(JUDGE), '--batch', str(tsv), '--json'], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        sys.exit('the judge failed:\n' + proc.stderr[-2000:])
    for line in proc.stdout.splitlines():
        if line.strip().startswith('{'):
            found = json.loads(line)
            rows[int(found['label'])].update({k: found[k] for k in KEYS})
    return True
