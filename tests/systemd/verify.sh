#!/bin/bash
# Check the cric systemd units with `systemd-analyze verify`.
#
# usage: tests/systemd/verify.sh BIN_DIR
#
# BIN_DIR holds the built daemons (cric-gateway ... cric-monitord), e.g.
# build/bin. Nothing needs to be installed: `systemd-analyze verify` insists
# that every Exec*= binary exists, so the units are copied to a temporary
# directory with their /usr/local/bin/ prefix rewritten to BIN_DIR (the same
# rewrite `make install PREFIX=...` does) and verified there; the units they
# depend on (network.target, multi-user.target, ...) come from the host.
# (`--root=DIR` over a DESTDIR tree does not work: it then also wants
# /bin/kill and every systemd target inside DIR.)
#
# systemd-analyze verify exits 0 on most warnings, so any output line that
# names one of our units, or the temporary directory, is a failure. Before
# that, the script checks the hardening invariants verify cannot know (no
# mount namespace for the daemons whose mounts must reach the host, nothing
# inherited by containers from runtimed and monitord).
# Exit status: 0 all clean, 1 a unit failed, 2 usage, 77 skipped.
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
	echo "verify.sh: BIN_DIR '$1' is not a directory" >&2
	exit 2
fi
bin_dir=$(cd "$1" && pwd -P)
# The path goes into ExecStart= unquoted and through sed: keep it plain.
case "$bin_dir" in
*[!A-Za-z0-9_./+-]*)
	echo "verify.sh: BIN_DIR '$bin_dir' has characters unsafe in a unit file" >&2
	exit 2
	;;
esac

unit_dir=$(cd "$(dirname "$0")/../../deploy/systemd" && pwd -P)
units="cric.target"
for d in $daemons; do
	units="$units cric-$d.service"
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cric-verify.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

failed=""
fail() { # unit message
	echo "FAIL $1: $2"
	case " $failed " in *" $1 "*) ;; *) failed="$failed $1" ;; esac
}

for u in $units; do
	if [ ! -f "$unit_dir/$u" ]; then
		fail "$u" "missing $unit_dir/$u"
		continue
	fi
	sed "s|/usr/local/bin/|$bin_dir/|g" "$unit_dir/$u" >"$tmp/$u"
done

# The install-time rewrite relies on this exact ExecStart= form.
for d in $daemons; do
	u=cric-$d.service
	[ -f "$unit_dir/$u" ] || continue
	want="ExecStart=/usr/local/bin/cric-$d --config /etc/cric/cric.json"
	n=$(grep -c '^ExecStart=' "$unit_dir/$u" || true)
	if [ "$n" != 1 ] || ! grep -qxF "$want" "$unit_dir/$u"; then
		fail "$u" "expected exactly one line '$want'"
	fi
	if [ ! -x "$bin_dir/cric-$d" ]; then
		fail "$u" "$bin_dir/cric-$d is missing or not executable"
	fi
done

# Invariants systemd-analyze cannot know about (see the comments in the
# units): mounts made by stored, netd, runtimed and monitord must reach the
# host, so nothing may give them a mount namespace; runtimed and monitord
# pass what they have on to containers, so no NoNewPrivileges=, seccomp,
# capability or namespace restriction there, and containers and monitors
# must survive their restart.
has_key() { # file key
	grep -Eq "^[[:space:]]*$2[[:space:]]*=" "$1"
}
mountns_keys="ProtectSystem ProtectHome PrivateTmp PrivateDevices
	ProtectKernelTunables ProtectKernelModules ProtectKernelLogs
	ProtectControlGroups ProtectProc ProcSubset PrivateIPC IPCNamespacePath
	ReadWritePaths ReadOnlyPaths InaccessiblePaths ExecPaths NoExecPaths
	BindPaths BindReadOnlyPaths TemporaryFileSystem RootDirectory RootImage
	MountImages ExtensionImages ExtensionDirectories MountFlags DynamicUser
	LogNamespace"
inherited_keys="SystemCallFilter SystemCallArchitectures SystemCallLog
	RestrictAddressFamilies RestrictNamespaces MemoryDenyWriteExecute
	LockPersonality RestrictRealtime RestrictSUIDSGID ProtectClock
	ProtectHostname CapabilityBoundingSet PrivateNetwork NetworkNamespacePath
	PrivateUsers IPAddressDeny DevicePolicy DeviceAllow UMask"
for d in stored netd runtimed monitord; do
	f=$unit_dir/cric-$d.service
	[ -f "$f" ] || continue
	for k in $mountns_keys; do
		if has_key "$f" "$k"; then
			fail "cric-$d.service" "$k= would give it a mount namespace"
		fi
	done
	if ! grep -qx 'PrivateMounts=no' "$f"; then
		fail "cric-$d.service" "needs an explicit PrivateMounts=no"
	fi
done
for d in runtimed monitord; do
	f=$unit_dir/cric-$d.service
	[ -f "$f" ] || continue
	for k in $inherited_keys; do
		if has_key "$f" "$k"; then
			fail "cric-$d.service" "$k= would be inherited by containers"
		fi
	done
	if ! grep -qx 'NoNewPrivileges=no' "$f"; then
		fail "cric-$d.service" "needs an explicit NoNewPrivileges=no"
	fi
	if ! grep -qx 'KillMode=process' "$f"; then
		fail "cric-$d.service" "needs KillMode=process"
	fi
done

files=()
for u in $units; do
	[ -f "$tmp/$u" ] && files+=("$tmp/$u")
done

rc=0
SYSTEMD_COLORS=0 systemd-analyze verify --man=no --recursive-errors=no \
	"${files[@]}" >"$tmp/out" 2>&1 || rc=$?

# Attribute each output line to the unit it names; other lines that mention
# cric or our temporary directory fail the whole run.
while IFS= read -r line; do
	[ -n "$line" ] || continue
	hit=""
	for u in $units; do
		case "$line" in
		*"$u"*) hit=$u ;;
		esac
	done
	if [ -n "$hit" ]; then
		fail "$hit" "$line"
	elif [[ "$line" == *"$tmp"* || "$line" == *cric* ]]; then
		fail "(all)" "$line"
	else
		echo "note (not about our units, ignored): $line"
	fi
done <"$tmp/out"

if [ "$rc" -ne 0 ] && [ -z "$failed" ]; then
	fail "(all)" "systemd-analyze verify exited $rc"
fi

npass=0
nfail=0
for u in $units; do
	case " $failed " in
	*" $u "* | *" (all) "*)
		nfail=$((nfail + 1))
		echo "not ok $u"
		;;
	*)
		npass=$((npass + 1))
		echo "ok $u"
		;;
	esac
done
echo "systemd-verify: $npass passed, $nfail failed"
[ "$nfail" -eq 0 ]
