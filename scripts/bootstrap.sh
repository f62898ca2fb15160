#!/usr/bin/env bash
# One entry point for a fresh Debian / Raspberry Pi OS machine:
#   bash scripts/bootstrap.sh demo   installs everything, then runs the simulated demo
#   bash scripts/bootstrap.sh test   installs everything, then lint + the whole test suite
# It installs the system packages it needs (with sudo when not root), makes a
# virtual environment in .venv and installs the project into it. Re-running is
# cheap: nothing is installed twice.
set -euo pipefail
cd "$(dirname "$0")/.."

what="${1:-demo}"
shift || true
VENV="${COMPANION_VENV:-.venv}"
PY="${PYTHON:-python3}"

# libportaudio2: sounddevice's PortAudio; espeak-ng: pyttsx3's speech engine;
# pulseaudio + pulseaudio-utils + libasound2-plugins: the audio sink the tests play into
# and read back (and how a Pi reaches Bluetooth earbuds); dbus-daemon: the private bus the
# BLE tests serve a fake BlueZ on; python3-venv: the virtual environment.
SYSTEM_PACKAGES=(libportaudio2 espeak-ng pulseaudio pulseaudio-utils libasound2-plugins
                 alsa-utils dbus-daemon python3-venv)
# chromium (test set-up only, the demo stays light): the report test opens the HTML run
# report in a real headless browser.
if [ "$what" = test ]; then SYSTEM_PACKAGES+=(chromium); fi

need=()
for pkg in "${SYSTEM_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "bootstrap: installing system packages: ${need[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "bootstrap: not a Debian-like system; install these yourself: ${need[*]}" >&2
  fi
fi

stamp="$VENV/.installed"
if [ ! -x "$VENV/bin/python" ]; then
  echo "bootstrap: creating virtual environment $VENV"
  "$PY" -m venv "$VENV"
fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "bootstrap: installing companion and its dependencies into $VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
  # setuptools' "Editable installation" notice is about folders named like the package in
  # the working directory: here that folder is the package itself, so it is only noise
  PYTHONWARNINGS="ignore:Editable installation:UserWarning" \
    "$VENV/bin/python" -m pip install -q -e '.[dev]'
  touch "$stamp"
fi

case "$what" in
  demo)
    exec "$VENV/bin/companion" demo "$@"
    ;;
  test)
    "$VENV/bin/ruff" check .
    "$VENV/bin/ruff" format --check .
    exec "$VENV/bin/python" -m pytest "$@"
    ;;
  shell)
    echo "bootstrap: ready; run: source $VENV/bin/activate"
    ;;
  *)
    echo "usage: bash scripts/bootstrap.sh demo|test|shell [args...]" >&2
    exit 2
    ;;
esac
