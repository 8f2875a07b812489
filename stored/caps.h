/* The capabilities cric-stored keeps: the one list main.c drops to and the
 * unit tests unpack under (tests/unit/test-stored-unpack.c), so a test never
 * passes on a capability the daemon does not have. The unit file's
 * CapabilityBoundingSet= (deploy/systemd/cric-stored.service) and
 * tests/integration/test_privileges.py must name the same set. */
#pragma once

#include <stddef.h>
#include <sys/capability.h>

extern const cap_value_t stored_caps[];
extern const size_t stored_n_caps;
