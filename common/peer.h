/* Who is calling: the caller of an internal request, from the peer
 * credentials of its unix socket.
 *
 * The kernel records the peer's uid, gid and pid when it connects
 * (SO_PEERCRED; nng hands them out per pipe). The two unprivileged daemons
 * are told apart by their users alone (cric-gateway, cric-imaged): a uid
 * cannot be forged and no other process runs as them. Root peers all hold
 * the same uid; they are told apart by the executable the peer pid runs
 * (/proc/<pid>/exe), which must be cric-<daemon> in the directory our own
 * executable lives in (the suite's binaries are installed together). A
 * root peer whose executable we cannot read (a non-root server may not look
 * at root's processes) or that is some other program is CALLER_ADMIN: root
 * can do anything to the daemons anyway (it can ptrace them), so the
 * identification of root peers sorts root's own processes for the tables
 * and the logs; the confinement is that of the unprivileged daemons, which
 * rests on the uid alone.
 *
 * A pid may be reused. The peer's process is looked at twice around reading
 * its executable, by its start time: if that changed, or the process is
 * gone, the peer is not identified by executable (it stays root, so
 * CALLER_ADMIN). Another root process could only take over the pid between
 * the connect and our look after the connecting one exited, which closes
 * its connection (unless it passed the socket on: then that process is the
 * caller, and it is root).
 */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "ipc.h"
#include "service.h"

struct cric_peer {
	uid_t uid;
	gid_t gid;
	pid_t pid;
	char exe[256];   /* "" when unknown */
	char comm[16];   /* its command name, for logs when exe is unknown */
	unsigned caller; /* one enum cric_caller bit, 0 for none */
};

/* The caller of a peer with these credentials and executable (exe NULL or
 * "" when unknown). Pure: the rules above, unit-tested. A non-root peer
 * that is neither daemon user is CALLER_MEMBER (it could reach the socket,
 * so it is a member of group cric, or its owner). */
unsigned caller_from_creds(const struct cric_identities *ids, uid_t uid, const char *exe);

/* Fill *ret for the process with pid (credentials from the socket): reads
 * /proc/<pid>/exe (a server without CAP_SYS_PTRACE cannot for another
 * user's process) and comm, checking the pid did not change hands (see
 * above). Never fails: what cannot be read stays unknown. */
void peer_identify(const struct cric_identities *ids, uid_t uid, gid_t gid, pid_t pid,
		   struct cric_peer *ret);

/* Field 22 of /proc/<pid>/stat (the start time, in clock ticks since
 * boot); 0 when the process is gone. */
unsigned long long peer_start_time(pid_t pid);

/* "gateway", "imaged", ..., "admin", "member", "nobody". */
const char *caller_name(unsigned caller);

/* The directory of our own executable into buf; -errno. */
int self_bin_dir(char *buf, size_t size);
