#!/bin/sh
# prerm (deb) and %preun (rpm): stop the auditor before its binary goes.
# dpkg passes "remove" (or "upgrade"), rpm 0 on erase (1 on upgrade).
# A template: scripts/package.sh writes it out twice, with @INVOKE@ as
# deb-systemd-invoke for the .deb (it honours policy-rc.d, as Debian wants)
# and systemctl for the .rpm. daemon-reload is systemctl's on both.
set -e

case "$1" in
remove | 0)
	if [ -d /run/systemd/system ]; then
		@INVOKE@ stop remaphore-audit.service >/dev/null 2>&1 || true
	fi
	;;
esac
exit 0
