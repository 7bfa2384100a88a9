#!/usr/bin/env bash
# Debian packages the tests and benchmarks need: podman + buildah + runc + debootstrap (image
# builds and `podman kube play`), prometheus + promtool + prometheus-pushgateway (alert rules, the
# observability tests and the batch jobs' pushed metrics), wrk + hey (load generators), chromium
# (renders the training report headless in its test).
# Idempotent: returns at once when everything is installed.
set -euo pipefail

packages=(podman buildah runc debootstrap prometheus prometheus-pushgateway wrk hey chromium)

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-system-deps: all present (${packages[*]})"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  sudo=sudo
else
  sudo=
fi
echo "install-system-deps: installing ${missing[*]}"
$sudo apt-get update -q
# Nothing may start on its own (prometheus ships a service): tests start what they need.
DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 $sudo apt-get install -y -q "${missing[@]}"
