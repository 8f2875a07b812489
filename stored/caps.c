#include "caps.h"

#include "common/macro.h"

const cap_value_t stored_caps[] = {
	CAP_SYS_ADMIN,    /* overlay mounts; trusted.overlay.* xattrs (whiteouts) */
	CAP_CHOWN,        /* layer files keep their owners */
	CAP_FOWNER,       /* chmod, utimes and xattrs on files stored does not own */
	CAP_FSETID,       /* chmod keeps setgid on files whose group is not
			   * stored's (chage 2755 root:shadow); without it the
			   * kernel clears the bit */
	CAP_MKNOD,        /* whiteouts are char devices 0/0 */
	CAP_DAC_OVERRIDE, /* walk and remove trees of any mode */
	CAP_SETFCAP,      /* security.capability xattrs (file capabilities) */
	CAP_SETUID,       /* the id map of a user namespace for id-mapped */
	CAP_SETGID,       /* layers (user-namespaced pods; common/idmap.h) */
};

const size_t stored_n_caps = ARRAY_SIZE(stored_caps);
