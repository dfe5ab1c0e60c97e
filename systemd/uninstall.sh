#!/usr/bin/env bash
# Remove the lane edge agent installed by systemd/install.sh (run as root).
#
#   sudo bash /opt/edge-agent/src/systemd/uninstall.sh            # code, unit, udev rules; keeps data
#   sudo bash /opt/edge-agent/src/systemd/uninstall.sh --purge    # also config, credentials, store, user
#
# Without --purge the config (/etc/edge-agent) and the store (/var/lib/edge-agent) stay, so a
# reinstall picks up where the lane left off. --purge overwrites the store and the credentials
# before unlinking them (shred), then removes the system user. DESTDIR works as for install.sh.
set -euo pipefail

DESTDIR=${DESTDIR:-}
ROOT=${DESTDIR%/}
UNIT=edge-agent.service
purge=false
case "${1:-}" in
    "") ;;
    --purge) purge=true ;;
    *) echo "usage: uninstall.sh [--purge]" >&2; exit 2 ;;
esac

[ "$(id -u)" -eq 0 ] || { echo "uninstall.sh: run as root" >&2; exit 1; }
if [ -z "$ROOT" ]; then
    systemctl disable --now "$UNIT" 2>/dev/null || true
fi
rm -f "$ROOT/etc/systemd/system/$UNIT" "$ROOT/etc/udev/rules.d/99-edge-agent.rules" \
    "$ROOT/usr/lib/sysusers.d/edge-agent.conf"
rm -rf "${ROOT:?}/opt/edge-agent" 2>/dev/null || rm -rf "$ROOT/opt/edge-agent"

if $purge; then
    for dir in "$ROOT/var/lib/edge-agent" "$ROOT/etc/edge-agent/credentials"; do
        [ -d "$dir" ] && find "$dir" -type f -exec shred --zero --remove {} +
    done
    rm -rf "$ROOT/var/lib/edge-agent" "$ROOT/etc/edge-agent"
    if [ -z "$ROOT" ]; then
        userdel edge-agent 2>/dev/null || true
        groupdel edge-agent 2>/dev/null || true
    else
        for f in passwd shadow group gshadow; do
            [ -f "$ROOT/etc/$f" ] && sed -i -e '/^edge-agent:/d' -e 's/\(:\|,\)edge-agent\(,\|$\)/\1\2/' \
                -e 's/,$//' "$ROOT/etc/$f"
        done
    fi
fi

if [ -z "$ROOT" ]; then
    systemctl daemon-reload
    udevadm control --reload-rules || true
fi
echo "uninstall.sh: removed$($purge && echo ', with config, credentials, store and user')"
