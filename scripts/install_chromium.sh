#!/usr/bin/env bash
# Install Debian's chromium for the study app's browser tests (playwright-python drives
# /usr/bin/chromium through executable_path; playwright's own browser download is not used).
#
# Idempotent: nothing happens when /usr/bin/chromium already exists.
# Usage: scripts/install_chromium.sh
set -euo pipefail

if [[ -x /usr/bin/chromium ]]; then
  echo "install_chromium: $(/usr/bin/chromium --version 2>/dev/null || echo chromium) already installed"
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
echo "install_chromium: installing the Debian package chromium"
if ! $SUDO apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core; then
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core
fi

if [[ ! -x /usr/bin/chromium ]]; then
  echo "install_chromium: ERROR: /usr/bin/chromium is still missing" >&2
  exit 1
fi
echo "install_chromium: installed $(/usr/bin/chromium --version 2>/dev/null || echo chromium)"
