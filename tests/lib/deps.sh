#!/usr/bin/env bash
# Installs the Debian packages listed in vendor/debian-packages.txt that are missing or too old.
# As root it runs apt-get; otherwise it prints the command to run. Used by `make deps`, `make test`,
# `make demo` and .ci/run, so all of them need exactly the same packages.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
manifest="$top/vendor/debian-packages.txt"
missing=()
while read -r pkg min _role; do
  case "$pkg" in ''|'#'*) continue ;; esac
  have=$(dpkg-query -W -f='${Status} ${Version}' "$pkg" 2>/dev/null)
  case "$have" in
    "install ok installed "*)
      version=${have#install ok installed }
      if ! dpkg --compare-versions "$version" ge "$min"; then missing+=("$pkg"); fi ;;
    *) missing+=("$pkg") ;;
  esac
done < "$manifest"
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then
  echo "deps: not root; run: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2 || { echo "deps: apt-get update failed" >&2; exit 1; }
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 || { echo "deps: apt-get install failed" >&2; exit 1; }
