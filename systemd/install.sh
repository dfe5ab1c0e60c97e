#!/usr/bin/env bash
# Install the lane edge agent as a systemd service (Raspberry Pi OS / Debian, run as root).
#
#   sudo RFID_SERIAL=A10K1234 WIM_SERIAL=FT5XYZ bash systemd/install.sh
#
# What it lays down (paths under $DESTDIR when set: a scratch root for tests or inspection; a
# virtualenv is not relocatable, so a DESTDIR tree is for checking, not for copying onto a board):
#   /usr/lib/sysusers.d/edge-agent.conf   the system user, in the groups dialout, gpio, video
#   /opt/edge-agent/src                   this source tree (README, config examples, unit, scripts)
#   /opt/edge-agent/.venv                 the virtualenv the unit runs (edge-agent console script)
#   /etc/edge-agent             0750 root:edge-agent   lane.toml 0640 (from config/lane.example.toml)
#   /etc/edge-agent/keys        0750 root:edge-agent   officers' public keys
#   /etc/edge-agent/credentials 0700 root:root         one 0600 file per LoadCredential= of the unit
#   /var/lib/edge-agent         0700 edge-agent        the store, the signal state
#   /etc/udev/rules.d/99-edge-agent.rules              /dev/lane-rfid, /dev/lane-wim, /dev/lane-loops
#   /etc/systemd/system/edge-agent.service
# Existing config and credentials are never overwritten. Re-running the script upgrades the code.
#
# Environment:
#   DESTDIR              install into this root instead of / (no systemctl, no udevadm)
#   RFID_SERIAL, WIM_SERIAL, LOOPS_SERIAL   USB serial numbers for the udev names (see the rules file)
#   EDGE_AGENT_PACKAGE   what pip installs (default: the copied source with the 'pi' extra)
#   EDGE_AGENT_PIP_ARGS  extra pip arguments, e.g. "--no-index --find-links /media/usb/wheels" offline
#   PYTHON               the interpreter the virtualenv is made from (default python3)
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
DESTDIR=${DESTDIR:-}
ROOT=${DESTDIR%/}
PREFIX=/opt/edge-agent
PYTHON=${PYTHON:-python3}
UNIT=edge-agent.service
# The credentials the unit loads (LoadCredential=ID:/etc/edge-agent/credentials/ID); kept in step with
# the unit by tests/systemd/test_install.py.
CREDENTIALS=(lane-hmac mqtt-password mqtt-client.key)

die() { echo "install.sh: $*" >&2; exit 1; }
say() { echo "install.sh: $*"; }

[ "$(id -u)" -eq 0 ] || die "run as root (sudo bash $0)"
if [ -n "$ROOT" ]; then
    case "$ROOT" in /*) ;; *) die "DESTDIR must be an absolute path, not '$ROOT'" ;; esac
fi

# Serial numbers go into udev rules: refuse anything that could be more than a serial number.
for var in RFID_SERIAL WIM_SERIAL LOOPS_SERIAL; do
    value=${!var:-}
    if [ -n "$value" ] && ! [[ "$value" =~ ^[A-Za-z0-9._-]{1,64}$ ]]; then
        die "$var='$value': a USB serial number is 1-64 of A-Z a-z 0-9 . _ -"
    fi
done

# 1. The system user and its groups (systemd-sysusers works on a scratch root too).
install -D -m 0644 "$SRC/systemd/edge-agent.sysusers" "$ROOT/usr/lib/sysusers.d/edge-agent.conf"
mkdir -p "$ROOT/etc"
if [ -n "$ROOT" ]; then
    systemd-sysusers --root="$ROOT" "$ROOT/usr/lib/sysusers.d/edge-agent.conf" >/dev/null
else
    systemd-sysusers /usr/lib/sysusers.d/edge-agent.conf >/dev/null
fi
# Numeric ids from the target root's own passwd (the host's may differ or lack the user).
uid=$(awk -F: '$1 == "edge-agent" { print $3 }' "$ROOT/etc/passwd")
gid=$(awk -F: '$1 == "edge-agent" { print $4 }' "$ROOT/etc/passwd")
[ -n "$uid" ] && [ -n "$gid" ] || die "user edge-agent was not created in $ROOT/etc/passwd"

# 2. The code: a copy of the source tree and a virtualenv with the package installed.
install -d -m 0755 "$ROOT$PREFIX" "$ROOT$PREFIX/src"
for item in pyproject.toml README.md edge_agent drivers config systemd models; do
    [ -e "$SRC/$item" ] || continue
    rm -rf "${ROOT:?}$PREFIX/src/$item"
    cp -R "$SRC/$item" "$ROOT$PREFIX/src/$item"
done
find "$ROOT$PREFIX/src" -name __pycache__ -type d -prune -exec rm -rf {} +
chmod -R u=rwX,go=rX "$ROOT$PREFIX/src"
if [ ! -x "$ROOT$PREFIX/.venv/bin/python" ]; then
    # --system-site-packages: apt's python3-picamera2 (not installable from PyPI) stays visible
    "$PYTHON" -m venv --system-site-packages "$ROOT$PREFIX/.venv"
fi
# shellcheck disable=SC2086  # EDGE_AGENT_PIP_ARGS is a list of words on purpose
"$ROOT$PREFIX/.venv/bin/python" -m pip install -q --disable-pip-version-check ${EDGE_AGENT_PIP_ARGS:-} \
    "${EDGE_AGENT_PACKAGE:-$ROOT$PREFIX/src[pi]}"
[ -x "$ROOT$PREFIX/.venv/bin/edge-agent" ] || die "pip did not install the edge-agent command"

# 3. Config: readable by the service's group, writable by root only.
install -d -m 0750 -o 0 -g "$gid" "$ROOT/etc/edge-agent" "$ROOT/etc/edge-agent/keys"
if [ ! -e "$ROOT/etc/edge-agent/lane.toml" ]; then
    install -m 0640 -o 0 -g "$gid" "$SRC/config/lane.example.toml" "$ROOT/etc/edge-agent/lane.toml"
    say "wrote /etc/edge-agent/lane.toml from config/lane.example.toml: edit it, then 'edge-agent config check'"
fi

# 4. Credentials: root only; systemd copies each into the service's private $CREDENTIALS_DIRECTORY.
install -d -m 0700 -o 0 -g 0 "$ROOT/etc/edge-agent/credentials"
umask 077
for cred in "${CREDENTIALS[@]}"; do
    file="$ROOT/etc/edge-agent/credentials/$cred"
    if [ ! -e "$file" ]; then
        if [ "$cred" = lane-hmac ]; then
            # the lane's own HMAC secret: 32 random bytes as 64 hex characters; give central a copy
            head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$file"
        else
            : >"$file"  # systemd refuses a unit whose credential file is missing; fill it in
            say "created empty /etc/edge-agent/credentials/$cred: put the real one there if lane.toml names it"
        fi
    fi
    chown 0:0 "$file"
    chmod 0600 "$file"
done
umask 022

# 5. State: the store and the signal state, the service's alone.
install -d -m 0700 -o "$uid" -g "$gid" "$ROOT/var/lib/edge-agent"

# 6. udev names for the USB serial devices.
rules="$ROOT/etc/udev/rules.d/99-edge-agent.rules"
install -d -m 0755 "$ROOT/etc/udev/rules.d"
render() {  # render TAG SERIAL: that device's line, live with its serial or commented out without
    if [ -n "$2" ]; then sed -e "s/^@$1@//" -e "s/@$1_SERIAL@/$2/"; else sed -e "s/^@$1@/# /" -e "s/@$1_SERIAL@/SERIAL/"; fi
}
render RFID "${RFID_SERIAL:-}" <"$SRC/systemd/99-edge-agent.rules.in" | render WIM "${WIM_SERIAL:-}" |
    render LOOPS "${LOOPS_SERIAL:-}" >"$rules.tmp"
chmod 0644 "$rules.tmp"
mv "$rules.tmp" "$rules"

# 7. The unit.
install -D -m 0644 "$SRC/systemd/$UNIT" "$ROOT/etc/systemd/system/$UNIT"

if [ -z "$ROOT" ]; then
    udevadm control --reload-rules && udevadm trigger --subsystem-match=tty || say "udev reload failed"
    systemctl daemon-reload
    systemctl enable "$UNIT"
    say "installed. Next: edit /etc/edge-agent/lane.toml, fill /etc/edge-agent/credentials/*, then"
    say "  sudo $PREFIX/.venv/bin/edge-agent config check /etc/edge-agent/lane.toml && sudo systemctl start edge-agent"
else
    say "installed into $ROOT"
fi
