#!/usr/bin/env bash
# Checks packages built by scripts/package.sh:
#
#   scripts/package-check.sh dist/remaphore_V_amd64.deb [dist/remaphore-V-1.x86_64.rpm]
#
# The .deb: lintian passes (no error, no warning; deploy/lintian-overrides
# holds the overrides for static Go binaries), it holds the files below with
# their modes, and, unpacked, both binaries run and answer -version. The
# .rpm, when given: the same files (rpm -qlp, rpm -qp --scripts). With
# INSTALL_TEST=1 (CI sets it) the .deb is also installed with dpkg, checked,
# installed again, purged and installed once more, then purged and its user
# removed: only on a machine where remaphore has never been (no package, no
# /etc/remaphore, no remaphore-audit user), as root. Prints "N passed, N
# failed" and exits 1 on any failure.
set -uo pipefail

[ $# -ge 1 ] || { echo "usage: scripts/package-check.sh [-selftest] DEB [RPM]" >&2; exit 2; }

# -selftest DEB: the check itself, on a broken copy of a good DEB: without
# the unit, with a non-executable binary and with a config file under
# /etc/remaphore, it must fail, naming each of the three.
if [ "$1" = -selftest ]; then
	[ $# -eq 2 ] || { echo "usage: scripts/package-check.sh -selftest DEB" >&2; exit 2; }
	t=$(mktemp -d)
	trap 'rm -rf "$t"' EXIT
	dpkg-deb -R "$2" "$t/pkg"
	rm "$t/pkg/lib/systemd/system/remaphore-audit.service"
	chmod 0644 "$t/pkg/usr/bin/remaphore"
	printf 'default_identity: x\n' >"$t/pkg/etc/remaphore/remaphore.conf"
	dpkg-deb -b --root-owner-group "$t/pkg" "$t/broken.deb" >/dev/null
	if out=$(INSTALL_TEST=0 "$0" "$t/broken.deb" 2>&1); then
		echo "FAIL the check passed a broken package:"; echo "$out"; exit 1
	fi
	st=0
	for want in "FAIL deb lacks ./lib/systemd/system/remaphore-audit.service" \
		"FAIL deb lacks ./usr/bin/remaphore as -rwxr-xr-x" \
		"FAIL deb ships a file under /etc/remaphore"; do
		if grep -qF -- "$want" <<<"$out"; then echo "ok   selftest: $want"; else echo "FAIL selftest: no '$want' in:"; echo "$out"; st=1; fi
	done
	exit $st
fi
deb=$1
rpm=${2:-}
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok   $*"; }
bad() { failed=$((failed + 1)); echo "FAIL $*"; }

# Paths every package holds (mode as ls prints it, for the .deb).
want=(
	"-rwxr-xr-x ./usr/bin/remaphore"
	"-rwxr-xr-x ./usr/bin/remaphore-audit"
	"drwxr-xr-x ./etc/remaphore/"
	"-rw-r--r-- ./lib/systemd/system/remaphore-audit.service"
	"-rw-r--r-- ./usr/share/doc/remaphore/copyright"
	"-rw-r--r-- ./usr/share/doc/remaphore/changelog.gz"
	"-rw-r--r-- ./usr/share/doc/remaphore/examples/remaphore.conf"
	"-rw-r--r-- ./usr/share/doc/remaphore/examples/audit.conf"
	"-rw-r--r-- ./usr/share/man/man1/remaphore.1.gz"
	"-rw-r--r-- ./usr/share/man/man1/remaphore-audit.1.gz"
	"-rw-r--r-- ./usr/share/lintian/overrides/remaphore"
)

echo "== lintian $deb"
if lintian --fail-on error,warning --display-info "$deb"; then
	ok "lintian: no error or warning"
else
	bad "lintian found errors or warnings (above)"
fi

echo "== contents of $deb"
listing=$(dpkg-deb -c "$deb" | awk '{print $1, $2, $6}')
for w in "${want[@]}"; do
	mode=${w%% *}
	path=${w#* }
	if grep -qxF -- "$mode root/root $path" <<<"$listing"; then
		ok "deb holds $path ($mode root/root)"
	else
		bad "deb lacks $path as $mode root/root; it has: $(grep -F -- "$path" <<<"$listing" || echo nothing)"
	fi
done
# The host's config is made by postinst with a fresh key; the package must
# ship no key, neither as /etc/remaphore/remaphore.conf nor in its example.
if grep -q '\./etc/remaphore/.' <<<"$listing"; then
	bad "deb ships a file under /etc/remaphore: $(grep '\./etc/remaphore/.' <<<"$listing")"
else
	ok "deb ships no config under /etc/remaphore (postinst writes it per host)"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dpkg-deb -x "$deb" "$work/root"
dpkg-deb -e "$deb" "$work/control"
if grep -Eq '[1-9A-HJ-NP-Za-km-z]{40,}' "$work/root/usr/share/doc/remaphore/examples/remaphore.conf"; then
	bad "the example remaphore.conf holds a key"
else
	ok "the example remaphore.conf holds no key"
fi
if grep -q 'remaphore -C "\$CONF"' "$work/control/postinst" && grep -q '^CONF=/etc/remaphore/remaphore.conf$' "$work/control/postinst"; then
	ok "postinst writes /etc/remaphore/remaphore.conf with remaphore -C"
else
	bad "postinst does not write the config with remaphore -C"
fi
if grep -v '^[[:space:]]*#' "$work/control/postinst" "$work/control/prerm" "$work/control/postrm" | grep -q '@INVOKE@'; then
	bad "a maintainer script still holds the @INVOKE@ placeholder"
else
	ok "the maintainer scripts are rendered (no @INVOKE@ left)"
fi
unit=$work/root/lib/systemd/system/remaphore-audit.service
for line in User=remaphore-audit ProtectSystem=strict NoNewPrivileges=yes PrivateTmp=yes ProtectHome=yes \
	StateDirectory=remaphore ReadWritePaths=/var/lib/remaphore CapabilityBoundingSet= \
	"ExecStart=/usr/bin/remaphore-audit run -c /etc/remaphore/audit.conf"; do
	if grep -qxF -- "$line" "$unit"; then ok "unit: $line"; else bad "unit lacks the line $line"; fi
done

# The unpacked binaries run on this machine (they are amd64 and static).
if [ "$(dpkg-deb -f "$deb" Architecture)" = "$(dpkg --print-architecture)" ]; then
	for b in remaphore remaphore-audit; do
		if out=$("$work/root/usr/bin/$b" -version 2>&1) && [[ $out == "$b "* ]]; then
			ok "unpacked $b -version: $out"
		else
			bad "unpacked $b -version failed: $out"
		fi
	done
	if ! command -v file >/dev/null; then
		echo "skip the static check: no file(1) here"
	elif file "$work/root/usr/bin/remaphore" | grep -q 'statically linked'; then
		ok "remaphore is statically linked"
	else
		bad "remaphore is not static: $(file "$work/root/usr/bin/remaphore")"
	fi
else
	echo "skip running the binaries: the .deb is not for this machine's arch"
fi

if [ -n "$rpm" ]; then
	echo "== contents of $rpm"
	rlist=$(rpm -qlp "$rpm" 2>/dev/null)
	for w in "${want[@]}"; do
		path=${w#* .}
		path=${path%/}
		case $path in
		/lib/systemd/system/*) path=/usr$path ;; # rpm distributions: /usr/lib
		/usr/share/lintian/*) continue ;;       # Debian's only
		esac
		if grep -qxF -- "$path" <<<"$rlist"; then ok "rpm holds $path"; else bad "rpm lacks $path"; fi
	done
	if rpm -qp --scripts "$rpm" 2>/dev/null | grep -q 'remaphore -C "\$CONF"'; then
		ok "rpm %post writes the config with remaphore -C"
	else
		bad "rpm %post does not write the config"
	fi
fi

install_test() {
	local conf=/etc/remaphore/remaphore.conf ident='^[1-9A-HJ-NP-Za-km-z]{40,46} [1-9A-HJ-NP-Za-km-z]{80,90} \[' id1 id2 sum1 sum2
	if [ "$(id -u)" != 0 ] || dpkg -s remaphore >/dev/null 2>&1 || [ -e /etc/remaphore ] ||
		getent passwd remaphore-audit >/dev/null || getent group remaphore-audit >/dev/null; then
		echo "skip the install test: not root, or remaphore was installed here before"
		return
	fi
	echo "== install test: dpkg -i $deb"
	if ! dpkg -i "$deb"; then
		bad "dpkg -i failed"
		dpkg --purge remaphore >/dev/null 2>&1
		return
	fi
	if [ "$(getent passwd remaphore-audit | cut -d: -f7)" = /usr/sbin/nologin ]; then
		ok "postinst made the system user remaphore-audit (no login shell)"
	else
		bad "no remaphore-audit user after install: $(getent passwd remaphore-audit)"
	fi
	if [ "$(stat -c '%a %U %G' "$conf" 2>&1)" = "600 root root" ]; then
		ok "postinst wrote $conf, mode 600, root"
	else
		bad "$conf after install: $(stat -c '%a %U %G' "$conf" 2>&1)"
	fi
	id1=$(grep -E "$ident" "$conf" 2>/dev/null)
	if [ -n "$id1" ]; then
		ok "$conf holds an identity: public and private key"
	else
		bad "$conf holds no identity"
	fi
	echo "# changed by the operator" >>"$conf"
	sum1=$(sha256sum "$conf" 2>/dev/null)
	dpkg -i "$deb" >/dev/null 2>&1 || bad "dpkg -i (reinstall) failed"
	sum2=$(sha256sum "$conf" 2>/dev/null)
	if [ -n "$sum1" ] && [ "$sum1" = "$sum2" ]; then
		ok "a reinstall leaves the operator's $conf as it is"
	else
		bad "a reinstall changed $conf"
	fi
	dpkg --purge remaphore >/dev/null 2>&1 || bad "dpkg --purge failed"
	if [ ! -e "$conf" ] && [ ! -e /etc/remaphore ]; then
		ok "purge removes $conf and /etc/remaphore"
	else
		bad "after purge: $(ls -la /etc/remaphore 2>&1)"
	fi
	# Every install makes its own key: two hosts never share one.
	dpkg -i "$deb" >/dev/null 2>&1 || bad "dpkg -i (after purge) failed"
	id2=$(grep -E "$ident" "$conf" 2>/dev/null)
	if [ -n "$id2" ] && [ "$id2" != "$id1" ]; then
		ok "a new install writes a new key"
	else
		bad "a new install wrote the same config or key again"
	fi
	dpkg --purge remaphore >/dev/null 2>&1 || bad "dpkg --purge failed"
	userdel remaphore-audit 2>/dev/null
	groupdel remaphore-audit 2>/dev/null
	rm -rf /var/lib/remaphore
}
if [ "${INSTALL_TEST:-}" = 1 ]; then
	install_test
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
