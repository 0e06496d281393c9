#!/usr/bin/env bash
# Installs Debian's Chromium for the UI test (tests/system/test_ui.py drives it headless through the playwright
# package; playwright's own browser download is not used), and a colour emoji font: the previews mark the gold
# option with ✅, which is an empty box in the screenshots without one. Installs only what is missing, so it
# can run every time; runs apt-get update only when the install fails without it (a fresh image has no lists).
# Usage: scripts/install-browser.sh   (as root, or with sudo on PATH)
set -euo pipefail

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
dpkg -s fonts-noto-color-emoji >/dev/null 2>&1 || missing+=(fonts-noto-color-emoji)
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-browser: chromium ($(command -v chromium)) and the emoji font are already installed"
  exit 0
fi

SUDO=()
[ "$(id -u)" -eq 0 ] || SUDO=(sudo)
export DEBIAN_FRONTEND=noninteractive
APT=("${SUDO[@]}" apt-get install -y "${missing[@]}")

echo "install-browser: installing ${missing[*]}"
if ! "${APT[@]}"; then
  echo "install-browser: install failed; running apt-get update and trying again"
  "${SUDO[@]}" apt-get update
  "${APT[@]}"
fi
echo "install-browser: installed ${missing[*]}; chromium is $(command -v chromium)"
