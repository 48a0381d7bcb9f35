#!/usr/bin/env bash
# ContrastSeg prerequisites: a C++ runtime new enough for TorchSharp's native library.
#
# TorchSharp-cpu 0.107.0 (LibTorch 2.10) ships libLibTorchSharp.so linked against
# GLIBCXX_3.4.32 (GCC 13+). Debian 12 ships GCC 12's libstdc++ (up to GLIBCXX_3.4.30),
# so on Debian 12 this script installs libstdc++6 from Debian 13 (trixie) and then
# removes the trixie apt entry again so later installs stay on Debian 12.
#
# Idempotent: where the runtime already has GLIBCXX_3.4.32 (Ubuntu 24.04+, Debian 13+,
# Fedora 39+, or a second run) it only reports and exits 0.
# Also installs the optional full Fashion-MNIST from Debian (skip: CONTRASTSEG_SKIP_FASHION_MNIST=1).
# Usage: bash eng/setup.sh            (needs root or sudo only when something must change)
set -euo pipefail

REQUIRED=GLIBCXX_3.4.32
TRIXIE_LIST=/etc/apt/sources.list.d/contrastseg-trixie.sources

find_libstdcxx() {
  # The copy the dynamic loader will pick for x86_64/aarch64 processes.
  ldconfig -p 2>/dev/null | awk '/libstdc\+\+\.so\.6 .*(x86-64|AArch64)/ {print $NF; exit}'
}

has_required() {
  local lib; lib="$(find_libstdcxx)"
  [[ -n "$lib" && -r "$lib" ]] && grep -qa "$REQUIRED" "$lib"
}

# Optional: the full Fashion-MNIST (60,000 + 10,000 items) for the embedded default dataset and the
# classification-pretraining ablation. Without it the kit uses the compact subset shipped in the repo.
install_fashion_mnist() {
  [[ -d /usr/share/datasets/fashion-mnist ]] && { echo "setup: Fashion-MNIST present in /usr/share/datasets/fashion-mnist."; return 0; }
  command -v apt-get >/dev/null || { echo "setup: no apt-get; skipping the optional full Fashion-MNIST (the repo's subset is used)."; return 0; }
  local sudo=""; [[ $(id -u) -ne 0 ]] && { command -v sudo >/dev/null && sudo=sudo || { echo "setup: not root; skipping optional Fashion-MNIST."; return 0; }; }
  echo "setup: installing the optional Debian package dataset-fashion-mnist (MIT licence)."
  if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q dataset-fashion-mnist; then
    $sudo apt-get update -q && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q dataset-fashion-mnist \
      || echo "setup: could not install dataset-fashion-mnist; the repo's subset will be used."
  fi
}
if [[ "${CONTRASTSEG_SKIP_FASHION_MNIST:-0}" != "1" ]]; then install_fashion_mnist; fi

if has_required; then
  echo "setup: $(find_libstdcxx) provides $REQUIRED; nothing to do."
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null; then SUDO=sudo; else
    echo "setup: need root (or sudo) to install a newer libstdc++6." >&2; exit 1
  fi
fi

. /etc/os-release
if [[ "${ID:-}" == "debian" && "${VERSION_ID:-}" == "12" ]]; then
  echo "setup: Debian 12 detected; installing libstdc++6 from Debian 13 (trixie) for $REQUIRED."
  cleanup() { $SUDO rm -f "$TRIXIE_LIST"; }
  trap cleanup EXIT
  $SUDO tee "$TRIXIE_LIST" >/dev/null <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q -t trixie libstdc++6
  cleanup
  trap - EXIT
  # Refresh the lists without trixie so later installs resolve against Debian 12 only.
  $SUDO apt-get update -q || true
else
  echo "setup: $(find_libstdcxx || echo 'libstdc++.so.6') lacks $REQUIRED and this is ${PRETTY_NAME:-an unknown system}." >&2
  echo "setup: install GCC 13+'s libstdc++ (Ubuntu 24.04+, Debian 13+ and Fedora 39+ have it) and run again." >&2
  exit 1
fi

if has_required; then
  echo "setup: $(find_libstdcxx) now provides $REQUIRED."
else
  echo "setup: libstdc++ still lacks $REQUIRED after the install; see the apt output above." >&2
  exit 1
fi
