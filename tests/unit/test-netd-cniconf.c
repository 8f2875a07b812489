/* netd/cniconf.h: CNI network config parsing and discovery. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "netd/cniconf.h"
#include "testutil.h"

#define CONFLIST_A                                                                                 \
	"{\"cniVersion\": \"1.0.0\", \"name\": \"net-a\", \"plugins\": ["                          \
	"{\"type\": \"bridge\", \"bridge\": \"cni0\", \"ipam\": {\"type\": \"host-local\"}},"      \
	"{\"type\": \"portmap\", \"capabilities\": {\"portMappings\": true}}]}"

/* Parse from an exactly-sized heap copy (no NUL after it: ASan sees overreads). */
static int parse(const char *content, bool is_list, struct cni_network *net, struct cric_err *err)
{
	size_t len = strlen(content);
	char *copy = malloc(len ? len : 1);
	assert_non_null(copy);
	memcpy(copy, content, len);
	int r = cni_network_parse(copy, len, is_list, net, err);
	free(copy);
	return r;
}

static void parse_fails(const char *content, bool is_list, const char *needle)
{
	struct cni_network net;
	memset(&net, 0xa5, sizeof(net));
	struct cni_network copy = net;
	struct cric_err err = { { 0 } };
	int r = parse(content, is_list, &net, &err);
	if (r != -EINVAL)
		print_message("parse(%.200s): r=%d\n", content, r);
	assert_int_equal(r, -EINVAL);
	/* Output untouched on failure. */
	assert_memory_equal(&net, &copy, sizeof(net));
	if (needle && !strstr(err.msg, needle))
		print_message("parse(%.200s): \"%s\" not in \"%s\"\n", content, needle, err.msg);
	if (needle)
		assert_non_null(strstr(err.msg, needle));
	assert_int_equal(parse(content, is_list, &net, NULL), -EINVAL);
}

/* ---- cni_network_parse ---- */

static void test_parse_conflist(void **state)
{
	(void)state;
	struct cni_network net;
	struct cric_err err = { { 0 } };
	assert_int_equal(parse(CONFLIST_A, true, &net, &err), 0);
	assert_string_equal(net.name, "net-a");
	assert_string_equal(net.cni_version, "1.0.0");
	assert_int_equal(net.n_plugins, 2);
	assert_string_equal(net.plugins[0], "bridge");
	assert_string_equal(net.plugins[1], "portmap");

	/* A .json (is_list false) with "plugins" is a list too. */
	memset(&net, 0, sizeof(net));
	assert_int_equal(parse(CONFLIST_A, false, &net, &err), 0);
	assert_int_equal(net.n_plugins, 2);
	assert_string_equal(net.plugins[1], "portmap");
}

static void test_parse_single_conf(void **state)
{
	(void)state;
	struct cni_network net;
	assert_int_equal(parse("{\"cniVersion\": \"0.4.0\", \"name\": \"single\","
			       " \"type\": \"bridge\", \"isGateway\": true}",
			       false, &net, NULL),
			 0);
	assert_string_equal(net.name, "single");
	assert_string_equal(net.cni_version, "0.4.0");
	assert_int_equal(net.n_plugins, 1);
	assert_string_equal(net.plugins[0], "bridge");

	/* A single conf in a .conflist file is not a list. */
	parse_fails("{\"cniVersion\": \"0.4.0\", \"name\": \"single\", \"type\": \"bridge\"}", true,
		    "plugins");
}

static void test_parse_only_len_bytes(void **state)
{
	(void)state;
	/* Content after len is not looked at. */
	const char *doc = "{\"cniVersion\": \"1.0.0\", \"name\": \"n\", \"type\": \"loopback\"}";
	size_t len = strlen(doc);
	char *buf = malloc(len + 8);
	memcpy(buf, doc, len);
	memcpy(buf + len, "GARBAGE!", 8);
	struct cni_network net;
	assert_int_equal(cni_network_parse(buf, len, false, &net, NULL), 0);
	assert_string_equal(net.plugins[0], "loopback");
	/* One byte short is invalid JSON. */
	assert_int_equal(cni_network_parse(buf, len - 1, false, &net, NULL), -EINVAL);
	free(buf);
}

static void test_parse_missing_fields(void **state)
{
	(void)state;
	parse_fails("{\"cniVersion\": \"1.0.0\", \"plugins\": [{\"type\": \"bridge\"}]}", true,
		    "name");
	parse_fails("{\"cniVersion\": \"1.0.0\", \"name\": \"\", \"plugins\": [{\"type\": \"b\"}]}",
		    true, "name");
	parse_fails("{\"cniVersion\": \"1.0.0\", \"name\": 5, \"plugins\": [{\"type\": \"b\"}]}",
		    true, "name");
	parse_fails("{\"name\": \"n\", \"plugins\": [{\"type\": \"bridge\"}]}", true, "cniVersion");
	parse_fails("{\"name\": \"n\", \"cniVersion\": \"\", \"type\": \"bridge\"}", false,
		    "cniVersion");
	parse_fails("{\"name\": \"n\", \"cniVersion\": 1.0, \"type\": \"bridge\"}", false,
		    "cniVersion");
	/* type */
	parse_fails("{\"cniVersion\": \"1.0.0\", \"name\": \"n\"}", false, "type");
	parse_fails("{\"cniVersion\": \"1.0.0\", \"name\": \"n\", \"type\": 1}", false, "type");
	parse_fails("{\"cniVersion\": \"1.0.0\", \"name\": \"n\", \"plugins\": [{}]}", true,
		    "type");
	parse_fails("{\"cniVersion\": \"1.0.0\", \"name\": \"n\","
		    " \"plugins\": [{\"type\": \"bridge\"}, {\"ipam\": {}}]}",
		    true, "plugin 1");
	parse_fails("{\"cniVersion\": \"1.0.0\", \"name\": \"n\", \"plugins\": [\"bridge\"]}", true,
		    "type");
	parse_fails("{\"cniVersion\": \"1.0.0\", \"name\": \"n\", \"plugins\": [null]}", true,
		    "type");
	/* plugins */
	parse_fails("{\"cniVersion\": \"1.0.0\", \"name\": \"n\", \"plugins\": []}", true,
		    "plugins");
	parse_fails("{\"cniVersion\": \"1.0.0\", \"name\": \"n\", \"plugins\": []}", false,
		    "plugins");
	parse_fails("{\"cniVersion\": \"1.0.0\", \"name\": \"n\", \"plugins\": {\"type\": \"b\"}}",
		    false, "plugins");
	parse_fails("{\"cniVersion\": \"1.0.0\", \"name\": \"n\", \"plugins\": null, "
		    "\"type\": \"b\"}",
		    false, "plugins");
}

/* CNI spec: a network name matches ^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$ (plugins
 * such as host-local build paths from it). */
static void test_parse_network_names(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"-x", ".x", "_x", "..", "../x", "a/b", "a b", " a", "x:y", "caf\xc3\xa9", "a\\tb",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char doc[256];
		snprintf(doc, sizeof(doc),
			 "{\"cniVersion\": \"1\", \"name\": \"%s\", \"type\": \"bridge\"}", bad[i]);
		parse_fails(doc, false, "name");
	}
	static const char *const good[] = { "0net", "A.b-c_d", "cric", "k8s-pod-network" };
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		char doc[256];
		snprintf(doc, sizeof(doc),
			 "{\"cniVersion\": \"1\", \"name\": \"%s\", \"type\": \"bridge\"}",
			 good[i]);
		struct cni_network net;
		assert_int_equal(parse(doc, false, &net, NULL), 0);
		assert_string_equal(net.name, good[i]);
	}
}

static void test_parse_lengths(void **state)
{
	(void)state;
	char doc[2048], s[512];
	struct cni_network net;
	/* name: 255 fits, 256 does not. */
	memset(s, 'n', 255);
	s[255] = '\0';
	snprintf(doc, sizeof(doc), "{\"cniVersion\": \"1\", \"name\": \"%s\", \"type\": \"b\"}", s);
	assert_int_equal(parse(doc, false, &net, NULL), 0);
	assert_string_equal(net.name, s);
	s[255] = 'n';
	s[256] = '\0';
	snprintf(doc, sizeof(doc), "{\"cniVersion\": \"1\", \"name\": \"%s\", \"type\": \"b\"}", s);
	parse_fails(doc, false, "name");
	/* cniVersion: 31 fits, 32 does not. */
	memset(s, '1', 31);
	s[31] = '\0';
	snprintf(doc, sizeof(doc), "{\"cniVersion\": \"%s\", \"name\": \"n\", \"type\": \"b\"}", s);
	assert_int_equal(parse(doc, false, &net, NULL), 0);
	assert_string_equal(net.cni_version, s);
	s[31] = '1';
	s[32] = '\0';
	snprintf(doc, sizeof(doc), "{\"cniVersion\": \"%s\", \"name\": \"n\", \"type\": \"b\"}", s);
	parse_fails(doc, false, "cniVersion");
	/* type: 63 fits, 64 does not. */
	memset(s, 't', 63);
	s[63] = '\0';
	snprintf(doc, sizeof(doc), "{\"cniVersion\": \"1\", \"name\": \"n\", \"type\": \"%s\"}", s);
	assert_int_equal(parse(doc, false, &net, NULL), 0);
	assert_string_equal(net.plugins[0], s);
	s[63] = 't';
	s[64] = '\0';
	snprintf(doc, sizeof(doc), "{\"cniVersion\": \"1\", \"name\": \"n\", \"type\": \"%s\"}", s);
	parse_fails(doc, false, "type");
	/* A very long type is quoted only in part. */
	memset(s, 'x', 400);
	s[400] = '\0';
	snprintf(doc, sizeof(doc), "{\"cniVersion\": \"1\", \"name\": \"n\", \"type\": \"%s\"}", s);
	struct cric_err err = { { 0 } };
	assert_int_equal(parse(doc, false, &net, &err), -EINVAL);
	assert_true(strlen(err.msg) < 200);
}

static void test_parse_invalid_types(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"../x", "a/b",       "/usr/bin/x", ".",           "..",    ".hidden", "",
		"a b",  "bridge;rm", "x\\n",       "caf\xc3\xa9", "$(id)", "a\\tb",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char doc[512];
		snprintf(
		    doc, sizeof(doc),
		    "{\"cniVersion\": \"1\", \"name\": \"n\", \"plugins\": [{\"type\": \"%s\"}]}",
		    bad[i]);
		parse_fails(doc, true, "type");
		snprintf(doc, sizeof(doc),
			 "{\"cniVersion\": \"1\", \"name\": \"n\", \"type\": \"%s\"}", bad[i]);
		parse_fails(doc, false, "type");
	}
	/* An escaped NUL never gets as far as a C string. */
	parse_fails("{\"cniVersion\": \"1\", \"name\": \"n\", \"type\": \"a\\u0000b\"}", false,
		    NULL);
	/* Allowed characters. */
	struct cni_network net;
	assert_int_equal(
	    parse("{\"cniVersion\": \"1\", \"name\": \"n\", \"type\": \"Host-local_2.x\"}", false,
		  &net, NULL),
	    0);
	assert_string_equal(net.plugins[0], "Host-local_2.x");
}

static char *plugins_doc(int n)
{
	size_t cap = 128 + (size_t)n * 32;
	char *doc = malloc(cap);
	assert_non_null(doc);
	size_t k =
	    (size_t)snprintf(doc, cap, "{\"cniVersion\": \"1\", \"name\": \"n\", \"plugins\": [");
	for (int i = 0; i < n; i++)
		k += (size_t)snprintf(doc + k, cap - k, "%s{\"type\": \"p%d\"}", i ? "," : "", i);
	snprintf(doc + k, cap - k, "]}");
	return doc;
}

static void test_parse_plugin_count(void **state)
{
	(void)state;
	struct cni_network net;
	char *doc = plugins_doc(CNI_MAX_PLUGINS);
	assert_int_equal(parse(doc, true, &net, NULL), 0);
	assert_int_equal(net.n_plugins, CNI_MAX_PLUGINS);
	assert_string_equal(net.plugins[CNI_MAX_PLUGINS - 1], "p31");
	free(doc);
	doc = plugins_doc(CNI_MAX_PLUGINS + 1);
	parse_fails(doc, true, "plugins");
	free(doc);
	doc = plugins_doc(1000);
	parse_fails(doc, true, "plugins");
	free(doc);
}

static void test_parse_bad_json(void **state)
{
	(void)state;
	/* Duplicate keys, at top level and inside a plugin. */
	parse_fails("{\"cniVersion\": \"1\", \"name\": \"a\", \"name\": \"b\", \"type\": \"x\"}",
		    false, NULL);
	parse_fails("{\"cniVersion\": \"1\", \"name\": \"n\","
		    " \"plugins\": [{\"type\": \"a\", \"type\": \"b\"}]}",
		    true, NULL);
	/* Not an object. */
	parse_fails("[]", true, "object");
	parse_fails("[{\"type\": \"bridge\"}]", false, "object");
	parse_fails("\"x\"", false, NULL);
	parse_fails("42", false, NULL);
	parse_fails("null", false, NULL);
	/* Not JSON. */
	parse_fails("", false, "JSON");
	parse_fails("{", false, "JSON");
	parse_fails("{\"cniVersion\": \"1\", \"name\": \"n\", \"type\": \"x\"} trailing", false,
		    "JSON");
	parse_fails("\xff\xfe{}", false, "JSON");
	/* Deep nesting. */
	size_t depth = 50000;
	char *deep = malloc(2 * depth + 128);
	size_t k = (size_t)sprintf(
	    deep, "{\"cniVersion\": \"1\", \"name\": \"n\", \"type\": \"b\", \"x\": ");
	for (size_t i = 0; i < depth; i++)
		deep[k++] = '[';
	for (size_t i = 0; i < depth; i++)
		deep[k++] = ']';
	deep[k++] = '}';
	deep[k] = '\0';
	parse_fails(deep, false, "JSON");
	free(deep);
}

/* ---- cni_network_find ---- */

struct dirs {
	char *root;
	char conf[PATH_MAX];
	char bin1[PATH_MAX];
	char bin2[PATH_MAX];
	char *bins[3]; /* bin1, bin2, NULL */
};

static int setup(void **state)
{
	struct dirs *d = calloc(1, sizeof(*d));
	assert_non_null(d);
	d->root = tmpdir_make("cniconf");
	tpath(d->conf, d->root, "net.d");
	tpath(d->bin1, d->root, "bin1");
	tpath(d->bin2, d->root, "bin2");
	assert_int_equal(mkdir(d->conf, 0755), 0);
	assert_int_equal(mkdir(d->bin1, 0755), 0);
	assert_int_equal(mkdir(d->bin2, 0755), 0);
	d->bins[0] = d->bin1;
	d->bins[1] = d->bin2;
	d->bins[2] = NULL;
	*state = d;
	return 0;
}

static int teardown(void **state)
{
	struct dirs *d = *state;
	tmpdir_remove(d->root);
	free(d);
	return 0;
}

static void conf(struct dirs *d, const char *name, const char *content)
{
	char p[PATH_MAX];
	write_text(tpath(p, d->conf, name), content);
}

static void plugin(const char *dir, const char *name, mode_t mode)
{
	char p[PATH_MAX];
	write_bytes(tpath(p, dir, name), "#!/bin/sh\nexit 0\n", 17, mode);
}

static int find(struct dirs *d, struct cni_network *net, struct cric_err *err)
{
	memset(err, 0, sizeof(*err));
	return cni_network_find(d->conf, d->bins, net, err);
}

static void test_find_lexical_order(void **state)
{
	struct dirs *d = *state;
	plugin(d->bin1, "bridge", 0755);
	plugin(d->bin1, "portmap", 0755);
	plugin(d->bin1, "loopback", 0755);
	/* Written out of order; file names only decide. */
	conf(d, "20-b.conflist",
	     "{\"cniVersion\": \"1.0.0\", \"name\": \"net-b\", \"plugins\": [{\"type\": "
	     "\"bridge\"}]}");
	conf(d, "99-z.conf",
	     "{\"cniVersion\": \"1.0.0\", \"name\": \"net-z\", \"type\": \"loopback\"}");
	conf(d, "10-a.conflist", CONFLIST_A);
	struct cni_network net;
	struct cric_err err;
	assert_int_equal(find(d, &net, &err), 0);
	assert_string_equal(net.name, "net-a");
	char p[PATH_MAX];
	assert_string_equal(net.file, tpath(p, d->conf, "10-a.conflist"));
	assert_int_equal(net.n_plugins, 2);

	/* "10-a" sorts after "01-x": a .json one takes over. */
	conf(d, "01-x.json",
	     "{\"cniVersion\": \"0.4.0\", \"name\": \"net-x\", \"plugins\": [{\"type\": "
	     "\"loopback\"}]}");
	assert_int_equal(find(d, &net, &err), 0);
	assert_string_equal(net.name, "net-x");
	/* Byte order, not numeric: "001" < "01-x". */
	conf(d, "001.conf",
	     "{\"cniVersion\": \"0.4.0\", \"name\": \"net-001\", \"type\": \"bridge\"}");
	assert_int_equal(find(d, &net, &err), 0);
	assert_string_equal(net.name, "net-001");
	assert_string_equal(net.file, tpath(p, d->conf, "001.conf"));
}

static void test_find_skips_invalid(void **state)
{
	struct dirs *d = *state;
	char p[PATH_MAX];
	plugin(d->bin1, "bridge", 0755);
	plugin(d->bin1, "portmap", 0755);
	conf(d, "10-a.conflist", CONFLIST_A);
	/* All of these sort first and are skipped. */
	conf(d, "00-bad-json.conflist", "{ not json");
	conf(d, "01-no-plugins.conflist",
	     "{\"cniVersion\": \"1\", \"name\": \"n\", \"plugins\": []}");
	conf(d, "02-single-as-list.conflist",
	     "{\"cniVersion\": \"1\", \"name\": \"n\", \"type\": \"b\"}");
	conf(d, "03-bad-type.conf",
	     "{\"cniVersion\": \"1\", \"name\": \"n\", \"type\": \"../../bin/sh\"}");
	conf(d, "04-array.json", "[]");
	conf(d, "05-empty.conf", "");
	assert_int_equal(mkdir(tpath(p, d->conf, "06-dir.conf"), 0755), 0);
	/* Not candidates at all. */
	conf(
	    d, ".00-hidden.conflist",
	    "{\"cniVersion\": \"1\", \"name\": \"hidden\", \"plugins\": [{\"type\": \"bridge\"}]}");
	conf(d, "00-readme.txt",
	     "{\"cniVersion\": \"1\", \"name\": \"txt\", \"type\": \"bridge\"}");
	conf(d, "00-old.conflist.bak",
	     "{\"cniVersion\": \"1\", \"name\": \"bak\", \"plugins\": [{\"type\": \"bridge\"}]}");
	conf(d, ".conf", "{\"cniVersion\": \"1\", \"name\": \"dot\", \"type\": \"bridge\"}");
	/* Too large. */
	size_t n = CNI_CONF_MAX_BYTES + 10;
	char *big = malloc(n + 1);
	assert_non_null(big);
	const char *head =
	    "{\"cniVersion\": \"1\", \"name\": \"big\", \"type\": \"bridge\", \"x\": \"";
	memset(big, 'x', n);
	memcpy(big, head, strlen(head));
	big[n - 2] = '"';
	big[n - 1] = '}';
	big[n] = '\0';
	conf(d, "07-big.conf", big);
	free(big);

	struct cni_network net;
	struct cric_err err;
	assert_int_equal(find(d, &net, &err), 0);
	assert_string_equal(net.name, "net-a");
	assert_string_equal(net.file, tpath(p, d->conf, "10-a.conflist"));
}

static void test_find_nothing(void **state)
{
	struct dirs *d = *state;
	struct cni_network net;
	memset(&net, 0xa5, sizeof(net));
	struct cni_network copy = net;
	struct cric_err err;
	/* Empty dir. */
	assert_int_equal(find(d, &net, &err), -ENOENT);
	assert_non_null(strstr(err.msg, d->conf));
	/* Only invalid or unrelated files. */
	conf(d, "10-bad.conflist", "{}");
	conf(d, "README", "see docs");
	assert_int_equal(find(d, &net, &err), -ENOENT);
	assert_non_null(strstr(err.msg, d->conf));
	assert_memory_equal(&net, &copy, sizeof(net));
	/* Missing dir. */
	char missing[PATH_MAX];
	tpath(missing, d->root, "no-such-dir");
	memset(&err, 0, sizeof(err));
	assert_int_equal(cni_network_find(missing, d->bins, &net, &err), -ENOENT);
	assert_non_null(strstr(err.msg, missing));
	/* A file, not a dir. */
	char file[PATH_MAX];
	write_text(tpath(file, d->root, "file"), "x");
	assert_int_equal(cni_network_find(file, d->bins, &net, &err), -ENOENT);
	assert_non_null(strstr(err.msg, file));
	assert_memory_equal(&net, &copy, sizeof(net));
	/* err is optional. */
	assert_int_equal(cni_network_find(missing, d->bins, &net, NULL), -ENOENT);
}

static void test_find_missing_plugin(void **state)
{
	struct dirs *d = *state;
	char p[PATH_MAX];
	conf(d, "10-a.conflist", CONFLIST_A);
	plugin(d->bin1, "bridge", 0755);
	struct cni_network net;
	struct cric_err err;
	/* portmap nowhere. */
	assert_int_equal(find(d, &net, &err), -ENOEXEC);
	assert_non_null(strstr(err.msg, "\"portmap\""));
	assert_non_null(strstr(err.msg, d->bin1));
	assert_non_null(strstr(err.msg, d->bin2));
	assert_null(strstr(err.msg, "\"bridge\""));
	/* net is filled: the network was found. */
	assert_string_equal(net.name, "net-a");
	assert_string_equal(net.file, tpath(p, d->conf, "10-a.conflist"));

	/* Present but not executable: does not count. */
	plugin(d->bin1, "portmap", 0644);
	assert_int_equal(find(d, &net, &err), -ENOEXEC);
	assert_non_null(strstr(err.msg, "\"portmap\""));
	/* A directory of that name does not count either. */
	assert_int_equal(mkdir(tpath(p, d->bin2, "portmap"), 0755), 0);
	assert_int_equal(find(d, &net, &err), -ENOEXEC);
	assert_non_null(strstr(err.msg, "\"portmap\""));
	/* Executable in the second bin dir: found. */
	assert_int_equal(rmdir(p), 0);
	plugin(d->bin2, "portmap", 0700);
	assert_int_equal(find(d, &net, &err), 0);
	/* A symlink to an executable counts; a dangling one does not. */
	char target[PATH_MAX];
	assert_int_equal(unlink(tpath(p, d->bin2, "portmap")), 0);
	plugin(d->root, "real-portmap", 0755);
	assert_int_equal(symlink(tpath(target, d->root, "real-portmap"), p), 0);
	assert_int_equal(find(d, &net, &err), 0);
	assert_int_equal(unlink(target), 0);
	assert_int_equal(find(d, &net, &err), -ENOEXEC);

	/* No bin dirs at all. */
	char *none[] = { NULL };
	memset(&err, 0, sizeof(err));
	assert_int_equal(cni_network_find(d->conf, none, &net, &err), -ENOEXEC);
	assert_non_null(strstr(err.msg, "\"bridge\""));
}

/* STYLE.md: the error detail is filled only on failure. */
static void test_find_err_untouched_on_success(void **state)
{
	struct dirs *d = *state;
	conf(d, "10-a.conflist", CONFLIST_A);
	plugin(d->bin1, "bridge", 0755);
	plugin(d->bin1, "portmap", 0755);
	struct cni_network net;
	struct cric_err err = { "untouched" };
	assert_int_equal(cni_network_find(d->conf, d->bins, &net, &err), 0);
	if (strcmp(err.msg, "untouched") != 0)
		FAIL_REGRESSION("cni_network_find() fills err on success: \"%s\"", err.msg);
}

static int find_in_child(void *arg)
{
	struct dirs *d = arg;
	struct cni_network net;
	int r = cni_network_find(d->conf, d->bins, &net, NULL);
	return r == 0 && strcmp(net.name, "net-a") == 0 ? 0 : 1;
}

/* A FIFO in the conf dir is an invalid file like any other: skipped. */
static void test_find_fifo_skipped(void **state)
{
	struct dirs *d = *state;
	char p[PATH_MAX];
	conf(d, "10-a.conflist", CONFLIST_A);
	plugin(d->bin1, "bridge", 0755);
	plugin(d->bin1, "portmap", 0755);
	assert_int_equal(mkfifo(tpath(p, d->conf, "00-fifo.conflist"), 0644), 0);
	int st = run_in_child(find_in_child, d, 2);
	if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM)
		FAIL_REGRESSION("a FIFO in the CNI conf dir blocks cni_network_find() forever "
				"(read_file() opens it without O_NONBLOCK)");
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_conflist),
		cmocka_unit_test(test_parse_single_conf),
		cmocka_unit_test(test_parse_only_len_bytes),
		cmocka_unit_test(test_parse_missing_fields),
		cmocka_unit_test(test_parse_network_names),
		cmocka_unit_test(test_parse_lengths),
		cmocka_unit_test(test_parse_invalid_types),
		cmocka_unit_test(test_parse_plugin_count),
		cmocka_unit_test(test_parse_bad_json),
		T(test_find_lexical_order),
		T(test_find_skips_invalid),
		T(test_find_nothing),
		T(test_find_missing_plugin),
		T(test_find_err_untouched_on_success),
		T(test_find_fifo_skipped),
	};
#undef T
	return cmocka_run_group_tests_name("netd-cniconf", tests, NULL, NULL);
}
