#!/bin/sh
# Install the Debian packages named as arguments that are not installed yet.
# As root it runs apt-get; otherwise it prints the command to run.
missing=""
for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0
cmd="apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=600$missing"
if [ "$(id -u)" -ne 0 ]; then
    echo "untangle: missing Debian packages:$missing" >&2
    echo "run as root: apt-get update && $cmd" >&2
    exit 1
fi
echo "untangle: installing$missing" >&2
apt-get update -q >&2 || exit 1
DEBIAN_FRONTEND=noninteractive $cmd >&2
