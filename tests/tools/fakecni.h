/* A fake CNI plugin for the netd unit tests (python3): it appends each
 * invocation (plugin name, command, environment, stdin config) as one JSON
 * line to <bin dir>/calls, and behaves as its config says:
 *   "fail": "ADD"     fail that command with a CNI error document (code 7)
 *   "addIp": "cidr"   on ADD, add an eth0 interface in CNI_NETNS with this IP
 *   "printRaw": "s"   on ADD, print s instead of a result
 *   "sleep": seconds  sleep first
 * On ADD it prints prevResult (or an empty result) with its additions.
 *
 * For C unit tests: include after <cmocka.h> and <jansson.h>.
 */
#pragma once

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FAKE_CNI_PLUGIN                                                                            \
	"#!/usr/bin/python3\n"                                                                     \
	"import json, os, sys, time\n"                                                             \
	"d = os.path.dirname(os.path.abspath(__file__))\n"                                         \
	"name = os.path.basename(__file__)\n"                                                      \
	"conf = json.load(sys.stdin)\n"                                                            \
	"cmd = os.environ.get('CNI_COMMAND')\n"                                                    \
	"with open(os.path.join(d, 'calls'), 'a') as f:\n"                                         \
	"    f.write(json.dumps({'plugin': name, 'cmd': cmd, 'env': dict(os.environ),\n"           \
	"                        'conf': conf}) + '\\n')\n"                                        \
	"time.sleep(conf.get('sleep', 0))\n"                                                       \
	"if conf.get('fail') == cmd:\n"                                                            \
	"    print(json.dumps({'code': 7, 'msg': name + ' refuses ' + cmd,\n"                      \
	"                      'details': 'as configured'}))\n"                                    \
	"    sys.exit(1)\n"                                                                        \
	"if cmd == 'ADD':\n"                                                                       \
	"    if 'printRaw' in conf:\n"                                                             \
	"        sys.stdout.write(conf['printRaw'])\n"                                             \
	"        sys.exit(0)\n"                                                                    \
	"    res = conf.get('prevResult') or {'cniVersion': conf['cniVersion'],\n"                 \
	"                                      'interfaces': [], 'ips': []}\n"                     \
	"    if 'addIp' in conf:\n"                                                                \
	"        res['interfaces'].append({'name': os.environ['CNI_IFNAME'],\n"                    \
	"                                  'sandbox': os.environ['CNI_NETNS']})\n"                 \
	"        res['ips'].append({'address': conf['addIp'],\n"                                   \
	"                           'interface': len(res['interfaces']) - 1})\n"                   \
	"    print(json.dumps(res))\n"

/* Install the fake plugin as dir/name. */
static inline void fake_cni_install(const char *dir, const char *name)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *fp = fopen(p, "we");
	assert_non_null(fp);
	assert_int_equal(fputs(FAKE_CNI_PLUGIN, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(chmod(p, 0755), 0);
}

/* The invocations logged in dir/calls so far, as a JSON array (new ref). */
static inline json_t *fake_cni_calls(const char *dir)
{
	char p[PATH_MAX];
	json_t *calls = json_array();
	snprintf(p, sizeof(p), "%s/calls", dir);
	FILE *fp = fopen(p, "re");
	if (!fp)
		return calls;
	char *line = NULL;
	size_t cap = 0;
	while (getline(&line, &cap, fp) > 0) {
		json_t *c = json_loads(line, 0, NULL);
		assert_non_null(c);
		json_array_append_new(calls, c);
	}
	free(line);
	fclose(fp);
	return calls;
}

static inline void fake_cni_forget_calls(const char *dir)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/calls", dir);
	unlink(p);
}

/* "plugin:CMD plugin:CMD ..." of the logged calls, for order checks. */
static inline void fake_cni_sequence(const char *dir, char *buf, size_t len)
{
	json_t *calls = fake_cni_calls(dir);
	size_t i;
	json_t *c;
	buf[0] = '\0';
	json_array_foreach (calls, i, c) {
		size_t n = strlen(buf);
		snprintf(buf + n, len - n, "%s%s:%s", i ? " " : "",
			 json_string_value(json_object_get(c, "plugin")),
			 json_string_value(json_object_get(c, "cmd")));
	}
	json_decref(calls);
}
