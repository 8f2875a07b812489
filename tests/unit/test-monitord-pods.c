/* monitord/pods.h: /proc/net/dev as the pod stats read it. The stats
 * themselves (pods, cgroups, network namespaces) are
 * tests/integration/test_pod_stats.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "testutil.h"

#include "common/cleanup.h"
#include "common/fsutil.h"
#include "monitord/pods.h"

static const char sample[] =
    "Inter-|   Receive                                                |  Transmit\n"
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs "
    "drop fifo colls carrier compressed\n"
    "    lo:     140       2    0    0    0     0          0         0      140       2    0 "
    "   0    0     0       0          0\n"
    "  eth0: 1234567     890    3    4    0     0          0         0   765432     321    5 "
    "   6    0     0       0          0\n"
    "net1:5 6 7 8 0 0 0 0 9 10 11 12 0 0 0 0\n"
    "  bad0: 1 2 3\n"
    "  thisnameiswaytoolongforaninterfacename: 1 2 3 4 0 0 0 0 5 6 7 8 0 0 0 0\n"
    "  nocolon 1 2 3 4 0 0 0 0 5 6 7 8 0 0 0 0\n";

static void test_parse(void **state)
{
	(void)state;
	struct pods_iface ifs[8];
	size_t n = podstats_parse_net_dev(sample, ifs, 8);
	assert_int_equal(n, 2); /* lo, the short, long and colon-less lines left out */
	assert_string_equal(ifs[0].name, "eth0");
	assert_int_equal(ifs[0].rx_bytes, 1234567);
	assert_int_equal(ifs[0].rx_packets, 890);
	assert_int_equal(ifs[0].rx_errors, 3);
	assert_int_equal(ifs[0].rx_dropped, 4);
	assert_int_equal(ifs[0].tx_bytes, 765432);
	assert_int_equal(ifs[0].tx_packets, 321);
	assert_int_equal(ifs[0].tx_errors, 5);
	assert_int_equal(ifs[0].tx_dropped, 6);
	/* The kernel writes no space after the colon once counters are wide. */
	assert_string_equal(ifs[1].name, "net1");
	assert_int_equal(ifs[1].rx_bytes, 5);
	assert_int_equal(ifs[1].tx_dropped, 12);
	/* At most max. */
	assert_int_equal(podstats_parse_net_dev(sample, ifs, 1), 1);
	assert_string_equal(ifs[0].name, "eth0");
	/* Headers only, or less. */
	assert_int_equal(podstats_parse_net_dev("a\nb\n", ifs, 8), 0);
	assert_int_equal(podstats_parse_net_dev("", ifs, 8), 0);
	assert_int_equal(podstats_parse_net_dev("  eth0: 1 2 3 4 0 0 0 0 5 6 7 8\n", ifs, 8), 0);
}

/* This process's own namespace: the real file parses. */
static void test_live(void **state)
{
	(void)state;
	_cleanup_free_ char *text = NULL;
	size_t len;
	assert_int_equal(read_file("/proc/self/net/dev", 1 << 20, &text, &len), 0);
	struct pods_iface ifs[32];
	size_t lines = 0;
	for (const char *p = text; (p = strchr(p, '\n')); p++)
		lines++;
	size_t n = podstats_parse_net_dev(text, ifs, 32);
	/* Every line but the headers and lo. */
	bool has_lo = strstr(text, " lo:") != NULL;
	assert_true(lines >= 2);
	if (lines - 2 - has_lo <= 32)
		assert_int_equal(n, lines - 2 - has_lo);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_live),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
