#!/usr/bin/env bash
# System packages the project needs on Debian/Ubuntu:
#   espeak-ng  - tests synthesise their own speech (no data files in the repo)
#   sox        - handy for converting test audio; used by the browser tests' fake microphone
#   chromium   - the browser tests drive real headless Chromium (/usr/bin/chromium)
#   openssl    - a self-signed certificate for the browser's wss:// test
#   python3-venv - `python3 -m venv` on a stock Debian
# Idempotent: installs only what is missing. Runs apt-get through sudo when not root.
set -euo pipefail

need=()
command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
command -v sox >/dev/null 2>&1 || need+=(sox)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v openssl >/dev/null 2>&1 || need+=(openssl)  # the browser tests make a TLS certificate
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3-venv)

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
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${need[@]}"
