#!/bin/bash
# Print each cric service's `systemd-analyze security --offline=true` overall
# exposure score as a markdown table (lower is better; 10 is unconfined).
#
# usage: tests/systemd/security.sh BIN_DIR
#
# Offline mode reads the unit files only and needs no running systemd. The
# units are copied to a temporary directory with /usr/local/bin/ rewritten to
# BIN_DIR, as verify.sh does, so they are judged as they would be installed.
# Exit status: 0 table printed, 1 analysis failed, 2 usage, 77 skipped.
set -euo pipefail

daemons="gateway imaged stored netd runtimed monitord"

if [ $# -ne 1 ]; then
	echo "usage: $0 BIN_DIR" >&2
	exit 2
fi
if ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "SKIP: systemd-analyze not found (apt-get install systemd)"
	exit 77
fi
if [ ! -d "$1" ]; then
	echo "security.sh: BIN_DIR '$1' is not a directory" >&2
	exit 2
fi
bin_dir=$(cd "$1" && pwd -P)
case "$bin_dir" in
*[!A-Za-z0-9_./+-]*)
	echo "security.sh: BIN_DIR '$bin_dir' has characters unsafe in a unit file" >&2
	exit 2
	;;
esac

unit_dir=$(cd "$(dirname "$0")/../../deploy/systemd" && pwd -P)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cric-security.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

units="cric.target"
for d in $daemons; do
	units="$units cric-$d.service"
done
for u in $units; do
	sed "s|/usr/local/bin/|$bin_dir/|g" "$unit_dir/$u" >"$tmp/$u"
done

status=0
printf '| unit | exposure | rating |\n| --- | --- | --- |\n'
for d in $daemons; do
	u=cric-$d.service
	if ! SYSTEMD_COLORS=0 systemd-analyze security --offline=true --no-pager \
		"$tmp/$u" >"$tmp/$u.out" 2>&1; then
		echo "security.sh: systemd-analyze security failed for $u:" >&2
		cat "$tmp/$u.out" >&2
		status=1
		continue
	fi
	# "→ Overall exposure level for cric-x.service: 0.9 SAFE 😀"
	line=$(grep 'Overall exposure level for' "$tmp/$u.out" | tail -n 1)
	score=$(printf '%s\n' "$line" | sed -n 's/.*: \([0-9][0-9.]*\) \([A-Z]*\).*/\1/p')
	rating=$(printf '%s\n' "$line" | sed -n 's/.*: \([0-9][0-9.]*\) \([A-Z]*\).*/\2/p')
	if [ -z "$score" ]; then
		echo "security.sh: no overall exposure level for $u" >&2
		status=1
		continue
	fi
	printf '| %s | %s | %s |\n' "$u" "$score" "$rating"
done
exit "$status"
