#!/usr/bin/env bash
# System packages the project needs on Debian/Ubuntu:
#   espeak-ng  - tests synthesise their own speech (no data files in the repo)
#   sox        - handy for converting test audio; used by the browser tests' fake microphone
#   chromium   - the browser tests drive real headless Chromium (/usr/bin/chromium)
#   openssl    - a self-signed certificate for the browser's wss:// test
#   python3-venv - `python3 -m venv` on a stock Debian
#   nodejs, npm  - the Node `@deepgram/sdk` client test (npm installs the SDK under .cache/)
# Idempotent: installs only what is missing. Runs apt-get through sudo when not root.
set -euo pipefail

need=()
command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
command -v sox >/dev/null 2>&1 || need+=(sox)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v openssl >/dev/null 2>&1 || need+=(openssl)  # the browser tests make a TLS certificate
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3-venv)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)

if [ "${#need[@]}" -eq 0 ]; then
    echo "setup-system: all system packages present"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup-system: please install: ${need[*]} (no apt-get here)" >&2
    exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "setup-system: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
# A fresh cloud machine often runs apt at boot (unattended-upgrades, cloud-init): wait for its
# dpkg/apt locks (up to 10 min) instead of failing at once. apt >= 1.9 waits itself with
# DPkg::Lock::Timeout; the loop below also covers older apt and the lists lock that
# `apt-get update` takes.
LOCK_WAIT_S="${LOCK_WAIT_S:-600}"
apt_opts=(-o "DPkg::Lock::Timeout=${LOCK_WAIT_S}")
wait_for_locks() {
    command -v fuser >/dev/null 2>&1 || return 0
    local waited=0
    while $sudo fuser /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock >/dev/null 2>&1; do
        if [ "$waited" -ge "$LOCK_WAIT_S" ]; then
            echo "setup-system: apt/dpkg still locked after ${LOCK_WAIT_S} s; giving up" >&2
            return 1
        fi
        [ "$waited" -eq 0 ] && echo "setup-system: another apt/dpkg is running; waiting for it (up to ${LOCK_WAIT_S} s)"
        sleep 5
        waited=$((waited + 5))
    done
}
apt_get() {
    # Retry once after waiting: the lock can be taken between our check and apt's own.
    wait_for_locks
    $sudo apt-get "${apt_opts[@]}" "$@" || { wait_for_locks && $sudo apt-get "${apt_opts[@]}" "$@"; }
}
apt_get update -q
apt_get install -y -q --no-install-recommends "${need[@]}"
