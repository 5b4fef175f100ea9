#!/bin/sh
# postrm (deb) and %postun (rpm). dpkg passes "remove", "purge", "upgrade"
# and others; rpm passes 0 on erase, 1 on upgrade.
# A template: scripts/package.sh writes it out twice, with @INVOKE@ as
# deb-systemd-invoke for the .deb (it honours policy-rc.d, as Debian wants)
# and systemctl for the .rpm. daemon-reload is systemctl's on both.
set -e

case "$1" in
purge)
	# The config was made by postinst, not shipped, so dpkg does not know
	# it: purge removes it. The audit database under /var/lib/remaphore is
	# a record and stays, as does the remaphore-audit user that owns it.
	rm -f /etc/remaphore/remaphore.conf
	rmdir /etc/remaphore 2>/dev/null || true
	;;
esac

case "$1" in
remove | purge | 0)
	if [ -d /run/systemd/system ]; then
		systemctl --system daemon-reload >/dev/null || true
	fi
	;;
esac
exit 0
