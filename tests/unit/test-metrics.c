/* common/metrics.h: the registry (counters, gauges, histograms, bounded
 * label sets), the snapshot cric.Metrics answers, and the Prometheus text
 * writer (escaping, HELP/TYPE, histogram shape, merging daemons, hostile
 * answers left out). The integration test parses the writer's page with
 * the independent parser (prometheus_client). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "common/metrics.h"

static struct metric_family calls = {
	.name = "t_calls_total",
	.help = "Calls.\nWith a \\ in the help.",
	.type = METRIC_COUNTER,
	.labels = { "method", "code" },
};

static const double bounds[] = { 0.1, 1, 2.5 };
static struct metric_family lat = {
	.name = "t_latency_seconds",
	.help = "Latency.",
	.type = METRIC_HISTOGRAM,
	.labels = { "method" },
	.bounds = bounds,
	.n_bounds = ARRAY_SIZE(bounds),
};

static struct metric_family many = {
	.name = "t_many_total",
	.help = "Many label sets.",
	.type = METRIC_COUNTER,
	.labels = { "id" },
};

static struct metric_family plain = {
	.name = "t_plain_total",
	.help = "No labels.",
	.type = METRIC_COUNTER,
};

static struct metric_family level = {
	.name = "t_level",
	.help = "A gauge.",
	.type = METRIC_GAUGE,
	.labels = { "pool" },
};

static char *page_of(Cric__MetricsResponse *const *a, size_t n)
{
	size_t len = 0;
	char *p = metrics_format(a, n, &len);
	assert_non_null(p);
	assert_int_equal(strlen(p), len);
	return p;
}

static const Cric__MetricFamily *family(const Cric__MetricsResponse *r, const char *name)
{
	for (size_t i = 0; i < r->n_families; i++)
		if (strcmp(r->families[i]->name, name) == 0)
			return r->families[i];
	return NULL;
}

static void test_escaping(void **state)
{
	(void)state;
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);
	assert_non_null(f);
	metrics_escape(f, "a\"b\\c\nd", true);
	fputc('|', f);
	metrics_escape(f, "a\"b\\c\nd", false);
	fclose(f);
	assert_string_equal(buf, "a\\\"b\\\\c\\nd|a\"b\\\\c\\nd");
	free(buf);

	metric_add(&calls, METRIC_VALUES("Pull\"Image\\\n", "OK"), 2);
	Cric__MetricsResponse *r = NULL;
	assert_int_equal(metrics_snapshot("imaged", 1500000000LL * 1000000000, &r), 0);
	char *p = page_of(&r, 1);
	assert_non_null(strstr(p, "# HELP t_calls_total Calls.\\nWith a \\\\ in the help.\n"
				  "# TYPE t_calls_total counter\n"));
	assert_non_null(strstr(p, "t_calls_total{daemon=\"imaged\",method=\"Pull\\\"Image\\\\\\n\","
				  "code=\"OK\"} 2\n"));
	assert_non_null(
	    strstr(p, "cric_process_start_time_seconds{daemon=\"imaged\"} 1500000000\n"));
	assert_non_null(strstr(p, "# TYPE cric_process_open_fds gauge\n"));
	free(p);
	protobuf_c_message_free_unpacked(&r->base, NULL);
}

static void test_histogram_shape(void **state)
{
	(void)state;
	metric_observe(&lat, METRIC_VALUES("Run"), 0.05);
	metric_observe(&lat, METRIC_VALUES("Run"), 0.1); /* le is inclusive */
	metric_observe(&lat, METRIC_VALUES("Run"), 2);
	metric_observe(&lat, METRIC_VALUES("Run"), 100);
	metric_observe(&lat, METRIC_VALUES("Run"), NAN); /* ignored */
	metric_add(&lat, METRIC_VALUES("Run"), 1);       /* not a histogram's: ignored */
	Cric__MetricsResponse *r = NULL;
	assert_int_equal(metrics_snapshot("runtimed", 0, &r), 0);
	const Cric__MetricFamily *f = family(r, "t_latency_seconds");
	assert_non_null(f);
	assert_int_equal(f->n_bounds, 3);
	assert_int_equal(f->n_samples, 1);
	assert_int_equal(f->samples[0]->n_buckets, 4);
	char *p = page_of(&r, 1);
	assert_non_null(
	    strstr(p, "# TYPE t_latency_seconds histogram\n"
		      "t_latency_seconds_bucket{daemon=\"runtimed\",method=\"Run\",le=\"0.1\"} 2\n"
		      "t_latency_seconds_bucket{daemon=\"runtimed\",method=\"Run\",le=\"1\"} 2\n"
		      "t_latency_seconds_bucket{daemon=\"runtimed\",method=\"Run\",le=\"2.5\"} 3\n"
		      "t_latency_seconds_bucket{daemon=\"runtimed\",method=\"Run\",le=\"+Inf\"} 4\n"
		      "t_latency_seconds_sum{daemon=\"runtimed\",method=\"Run\"} 102.15\n"
		      "t_latency_seconds_count{daemon=\"runtimed\",method=\"Run\"} 4\n"));
	free(p);
	protobuf_c_message_free_unpacked(&r->base, NULL);
}

static void test_bounded_series(void **state)
{
	(void)state;
	char id[32];
	for (int i = 0; i < METRIC_SERIES_MAX + 50; i++) {
		snprintf(id, sizeof(id), "id-%d", i);
		metric_add(&many, METRIC_VALUES(id), 1);
	}
	char longv[METRIC_VALUE_MAX + 40];
	memset(longv, 'x', sizeof(longv) - 1);
	longv[sizeof(longv) - 1] = '\0';
	metric_add(&many, METRIC_VALUES("id-0"), 1);
	metric_add(&plain, NULL, 3);
	metric_add(&plain, NULL, -1); /* a counter never goes down */
	metric_set(&level, METRIC_VALUES("a"), 5);
	metric_add(&level, METRIC_VALUES("a"), -2);
	Cric__MetricsResponse *r = NULL;
	assert_int_equal(metrics_snapshot("d", 0, &r), 0);
	const Cric__MetricFamily *f = family(r, "t_many_total");
	assert_int_equal(f->n_samples, METRIC_SERIES_MAX);
	assert_string_equal(f->samples[0]->labels[0]->value, "id-0");
	assert_true(f->samples[0]->value == 2);
	const Cric__MetricSample *other = f->samples[METRIC_SERIES_MAX - 1];
	assert_string_equal(other->labels[0]->value, "_other");
	assert_true(other->value == 51);
	assert_true(family(r, "t_plain_total")->samples[0]->value == 3);
	assert_true(family(r, "t_level")->samples[0]->value == 3);
	protobuf_c_message_free_unpacked(&r->base, NULL);
}

/* Two daemons' answers merged: one HELP/TYPE per name; a peer's invalid
 * names, reserved labels and broken histograms left out. */
static void test_merge_and_hostile(void **state)
{
	(void)state;
	Cric__MetricsResponse *a = NULL, *b = NULL;
	assert_int_equal(metrics_snapshot("gateway", 0, &a), 0);
	assert_int_equal(metrics_snapshot("imaged", 0, &b), 0);
	/* Break some of b's. */
	Cric__MetricFamily *h = (Cric__MetricFamily *)family(b, "t_latency_seconds");
	h->samples[0]->n_buckets = 2;
	Cric__MetricFamily *c = (Cric__MetricFamily *)family(b, "t_calls_total");
	free(c->samples[0]->labels[0]->name);
	c->samples[0]->labels[0]->name = strdup("le");
	Cric__MetricFamily *g = (Cric__MetricFamily *)family(b, "t_level");
	free(g->name);
	g->name = strdup("t level{x=\"1\"} 9\n");
	/* A family only the answer after a missing one has. */
	Cric__MetricFamily *u = (Cric__MetricFamily *)family(b, "t_plain_total");
	free(u->name);
	u->name = strdup("t_unique_total");
	Cric__MetricsResponse *both[] = { a, NULL, b };
	char *p = page_of(both, 3);
	assert_non_null(
	    strstr(p, "# TYPE t_unique_total counter\nt_unique_total{daemon=\"imaged\"} 3\n"));
	const char *first = strstr(p, "# TYPE cric_process_open_fds gauge\n");
	assert_non_null(first);
	assert_null(strstr(first + 1, "# TYPE cric_process_open_fds"));
	assert_non_null(strstr(p, "cric_process_open_fds{daemon=\"gateway\"} "));
	assert_non_null(strstr(p, "cric_process_open_fds{daemon=\"imaged\"} "));
	assert_non_null(
	    strstr(p, "t_latency_seconds_count{daemon=\"gateway\",method=\"Run\"} 4\n"));
	assert_null(strstr(p, "t_latency_seconds_count{daemon=\"imaged\""));
	assert_null(strstr(p, "le=\"OK\""));
	assert_null(strstr(p, "t level"));
	assert_null(strstr(p, "x=\"1\""));
	free(p);
	protobuf_c_message_free_unpacked(&a->base, NULL);
	protobuf_c_message_free_unpacked(&b->base, NULL);
}

static void collect_level(void *arg)
{
	int *n = arg;
	(*n)++;
	metric_set(&level, METRIC_VALUES("b"), 40 + *n);
}

/* A collector runs at each snapshot until removed. */
static void test_collector(void **state)
{
	(void)state;
	int runs = 0;
	assert_int_equal(metric_collector_add(collect_level, &runs), 0);
	Cric__MetricsResponse *r = NULL;
	assert_int_equal(metrics_snapshot("d", 0, &r), 0);
	assert_int_equal(runs, 1);
	char *p = page_of(&r, 1);
	assert_non_null(strstr(p, "t_level{daemon=\"d\",pool=\"b\"} 41\n"));
	free(p);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	metric_collector_remove(collect_level, &runs);
	assert_int_equal(metrics_snapshot("d", 0, &r), 0);
	assert_int_equal(runs, 1);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	for (int i = 0; i < METRIC_COLLECTORS_MAX; i++)
		assert_int_equal(metric_collector_add(collect_level, &runs), 0);
	assert_int_equal(metric_collector_add(collect_level, &runs), -ENOSPC);
	metric_collector_remove(collect_level, &runs); /* every line of it */
	assert_int_equal(metrics_snapshot("d", 0, &r), 0);
	assert_int_equal(runs, 1);
	protobuf_c_message_free_unpacked(&r->base, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escaping),       cmocka_unit_test(test_histogram_shape),
		cmocka_unit_test(test_bounded_series), cmocka_unit_test(test_merge_and_hostile),
		cmocka_unit_test(test_collector),
	};
	return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
