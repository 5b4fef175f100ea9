#!/bin/sh
# postinst (deb) and %post (rpm). dpkg passes "configure" (and the old
# version on an upgrade); rpm passes the count of versions installed after
# this step: 1 on install, 2 on upgrade.
# A template: scripts/package.sh writes it out twice, with @INVOKE@ as
# deb-systemd-invoke for the .deb (it honours policy-rc.d, as Debian wants)
# and systemctl for the .rpm. daemon-reload is systemctl's on both.
set -e

CONF=/etc/remaphore/remaphore.conf
USER_NAME=remaphore-audit

case "$1" in
configure | 1 | 2) ;;
*) exit 0 ;;
esac

# The auditor's own system user and group. It owns nothing but its state
# directory, which systemd creates at start (StateDirectory=remaphore).
if ! getent passwd "$USER_NAME" >/dev/null; then
	if ! getent group "$USER_NAME" >/dev/null; then
		groupadd --system "$USER_NAME"
	fi
	useradd --system --gid "$USER_NAME" --home-dir /var/lib/remaphore \
		--no-create-home --shell /usr/sbin/nologin \
		--comment "remaphore auditor" "$USER_NAME"
fi

# The config, with a private key of this host's own: a key shipped in the
# package would be the same on every host. remaphore -C writes it at mode
# 0600 and never overwrites, so an existing config is left as it is.
if [ ! -e "$CONF" ]; then
	# It says itself what to edit. A failure leaves the package installed
	# without a config: remaphore's error then names the same command.
	if ! remaphore -C "$CONF"; then
		echo "remaphore: could not write $CONF; write one with: remaphore -C $CONF" >&2
	fi
fi

if [ -d /run/systemd/system ]; then
	systemctl --system daemon-reload >/dev/null || true
	# On an upgrade a running auditor goes on with the new binary; one that
	# is not running (not enabled, or not configured yet) stays stopped.
	@INVOKE@ try-restart remaphore-audit.service >/dev/null || true
fi
exit 0
