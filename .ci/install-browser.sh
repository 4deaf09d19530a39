#!/usr/bin/env bash
# Debian's Chromium for tests/test_web_browser.py. Playwright (a Python package in the
# `dev` extra) drives it; `playwright install` is never run, since it downloads a browser
# build of its own. Safe to run again: it does nothing once /usr/bin/chromium exists.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update
$sudo apt-get install -y chromium
