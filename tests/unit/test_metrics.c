/* test_metrics.c - the metrics table, hooks, probes and the text exposition. */
#include <pthread.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "hfm/common.h"
#include "hfm/metrics.h"
#include "tap.h"

static char *scrape(void)
{
	struct hfm_buf b = HFM_BUF_INIT(1u << 20);
	hfm_metrics_expose(&b);
	return hfm_buf_detach(&b);
}

/* The value of the line that starts with `series ` (exactly), or -1. */
static double value_of(const char *text, const char *series)
{
	size_t n = strlen(series);
	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (!strncmp(p, series, n) && p[n] == ' ')
			return strtod(p + n + 1, NULL);
	return -1;
}

/*
 * Every line is a comment or a sample; each family's HELP and TYPE come
 * before its samples; no series twice; names follow the conventions.
 */
static void check_format(const char *text)
{
	regex_t sample, help, type;
	int bad = 0, families = 0, samples = 0;
	char fam[128] = "", ftype[16] = "";
	char *copy = hfm_strdup(text), *save = NULL;
	size_t nseen = 0, cap = 4096;
	char **seen = hfm_calloc(cap, sizeof(*seen));

	regcomp(&sample, "^([a-zA-Z_:][a-zA-Z0-9_:]*)(\\{([a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\]|\\\\.)*\",?)*\\})? "
		"(-?[0-9]+(\\.[0-9]+)?|\\+Inf)$", REG_EXTENDED);
	regcomp(&help, "^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) [^\n]+$", REG_EXTENDED);
	regcomp(&type, "^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram)$", REG_EXTENDED);
	for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		regmatch_t m[3];
		if (!regexec(&help, l, 2, m, 0)) {
			snprintf(fam, sizeof(fam), "%.*s", (int)(m[1].rm_eo - m[1].rm_so), l + m[1].rm_so);
			ftype[0] = '\0';
			families++;
			if (strncmp(fam, "hfmirror_", 9)) {
				printf("# no hfmirror_ prefix: %s\n", l);
				bad++;
			}
			continue;
		}
		if (!regexec(&type, l, 3, m, 0)) {
			if (strncmp(l + m[1].rm_so, fam, strlen(fam)) || m[1].rm_eo - m[1].rm_so != (int)strlen(fam)) {
				printf("# TYPE without its HELP: %s\n", l);
				bad++;
			}
			snprintf(ftype, sizeof(ftype), "%s", l + m[2].rm_so);
			size_t fl = strlen(fam);
			if (!strcmp(ftype, "counter") && (fl < 6 || strcmp(fam + fl - 6, "_total"))) {
				printf("# a counter not named _total: %s\n", fam);
				bad++;
			}
			if (strcmp(ftype, "counter") && fl >= 6 && !strcmp(fam + fl - 6, "_total")) {
				printf("# _total but not a counter: %s\n", fam);
				bad++;
			}
			continue;
		}
		if (regexec(&sample, l, 0, NULL, 0)) {
			printf("# not a sample: %s\n", l);
			bad++;
			continue;
		}
		samples++;
		if (!ftype[0] || strncmp(l, fam, strlen(fam))) {
			printf("# a sample outside its family: %s\n", l);
			bad++;
		}
		size_t kl = strcspn(l, " ");
		for (size_t i = 0; i < nseen; i++)
			if (!strncmp(seen[i], l, kl) && seen[i][kl] == ' ') {
				printf("# twice: %.*s\n", (int)kl, l);
				bad++;
			}
		if (nseen < cap)
			seen[nseen++] = l;
	}
	TAP_OK(bad == 0, "exposition: %d families, %d samples, every line well formed", families,
	       samples);
	regfree(&sample);
	regfree(&help);
	regfree(&type);
	free(seen);
	free(copy);
}

static void test_table(void)
{
	TAP_IS_INT(hfm_metrics_check_table(), 0, "the family table covers every slot once (%s)",
		   hfm_error_last());
}

static void test_labels(void)
{
	TAP_IS_INT(hfm_metrics_source_of("model-bin"), HFM_MS_MODELBIN, "source: model-bin");
	TAP_IS_INT(hfm_metrics_source_of("cache"), HFM_MS_CACHE, "source: cache");
	TAP_IS_INT(hfm_metrics_source_of("s3"), HFM_MS_OTHER, "source: an unknown kind is other");
	TAP_IS_INT(hfm_metrics_source_of(NULL), HFM_MS_NONE, "source: none");
	TAP_IS_INT(hfm_metrics_code_of(206), HFM_MC_2XX, "code: 206 is 2xx");
	TAP_IS_INT(hfm_metrics_code_of(503), HFM_MC_5XX, "code: 503 is 5xx");
	TAP_IS_INT(hfm_metrics_code_of(0), HFM_MC_OTHER, "code: none sent is other");
	TAP_IS_INT(hfm_metrics_code_of(101), HFM_MC_OTHER, "code: 1xx is other");
}

static void test_escape(void)
{
	struct hfm_buf b = HFM_BUF_INIT(256);
	hfm_metrics_escape_label(&b, "a\\b\"c\nd");
	TAP_IS_STR(hfm_buf_cstr(&b), "a\\\\b\\\"c\\nd", "label values escape \\, \" and newline");
	hfm_buf_reset(&b);
	hfm_metrics_escape_help(&b, "x\\y\"z\nw");
	TAP_IS_STR(hfm_buf_cstr(&b), "x\\\\y\"z\\nw", "help texts escape \\ and newline, not quotes");
	hfm_buf_dispose(&b);
}

static void test_requests(void)
{
	char *t;

	hfm_metrics_request(HFM_MR_FILE, HFM_MS_CACHE, 200, 1000000);        /* 1 ms: on a bound */
	hfm_metrics_request(HFM_MR_FILE, HFM_MS_CACHE, 206, 3000000);
	hfm_metrics_request(HFM_MR_FILE, HFM_MS_NONE, 404, 2000000000ull);
	hfm_metrics_request(HFM_MR_FILE, HFM_MS_MODELBIN, 0, 1000000000000ull); /* past every bound */
	hfm_metrics_request((enum hfm_m_route)99, HFM_MS_NONE, 200, 1);
	t = scrape();
	TAP_OK(value_of(t, "hfmirror_requests_total{route=\"file\",source=\"cache\",code=\"2xx\"}") == 2,
	       "requests: by route, source and status class");
	TAP_OK(value_of(t, "hfmirror_requests_total{route=\"file\",source=\"none\",code=\"4xx\"}") == 1,
	       "requests: a 404 with no source");
	TAP_OK(value_of(t, "hfmirror_requests_total{route=\"file\",source=\"model-bin\",code=\"other\"}") == 1,
	       "requests: no status sent is other");
	TAP_OK(value_of(t, "hfmirror_requests_total{route=\"other\",source=\"none\",code=\"2xx\"}") == 1,
	       "requests: an unknown route counts as other");
	TAP_OK(value_of(t, "hfmirror_requests_total{route=\"api\",source=\"git\",code=\"5xx\"}") == 0,
	       "requests: every series exists from the start");

	const char *le[] = { "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
			     "0.5", "1", "2.5", "5", "10", "30", "60", "300", "+Inf" };
	const double want[] = { 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 4 };
	double prev = 0;
	int mono = 1, exact = 1;
	for (size_t i = 0; i < sizeof(le) / sizeof(le[0]); i++) {
		char s[160];
		snprintf(s, sizeof(s), "hfmirror_request_duration_seconds_bucket{route=\"file\",le=\"%s\"}", le[i]);
		double v = value_of(t, s);
		if (v < prev)
			mono = 0;
		if (v != want[i]) {
			exact = 0;
			printf("# le=%s: %g, want %g\n", le[i], v, want[i]);
		}
		prev = v;
	}
	TAP_OK(mono, "histogram: buckets are cumulative (never fall as le grows)");
	TAP_OK(exact, "histogram: each observation in the first bucket that holds it (le inclusive)");
	TAP_OK(value_of(t, "hfmirror_request_duration_seconds_count{route=\"file\"}") == 4,
	       "histogram: _count is the +Inf bucket");
	TAP_OK(strstr(t, "hfmirror_request_duration_seconds_sum{route=\"file\"} 1002.004\n") != NULL,
	       "histogram: _sum in seconds, exact");
	TAP_OK(value_of(t, "hfmirror_request_duration_seconds_bucket{route=\"ui\",le=\"+Inf\"}") == 0,
	       "histogram: other routes untouched");
	check_format(t);
	free(t);
}

static int probe_runs;
static void probe_read(void *cls)
{
	probe_runs++;
	hfm_metrics_set(HFM_M_CONNECTIONS_OPEN, *(int *)cls);
}

static void test_probes_and_optional(void)
{
	int open = 7;
	struct hfm_metrics_probe p = { .read = probe_read, .cls = &open };
	char *t;

	t = scrape();
	TAP_OK(!strstr(t, "hfmirror_store_bytes"), "optional gauges: absent until set");
	TAP_OK(strstr(t, "hfmirror_build_info{version=\"") != NULL, "build info with the version");
	free(t);
	hfm_metrics_set(HFM_M_STORE_BYTES + HFM_MO_IMPORTED, 4096);
	hfm_metrics_probe_add(&p);
	t = scrape();
	TAP_OK(value_of(t, "hfmirror_store_bytes{owner=\"imported\"}") == 4096 &&
	       value_of(t, "hfmirror_store_bytes{owner=\"cache\"}") == 0,
	       "optional gauges: the whole family once one series is set");
	TAP_OK(probe_runs == 1 && value_of(t, "hfmirror_connections_open") == 7,
	       "a probe runs before the exposition");
	free(t);
	hfm_metrics_probe_remove(&p);
	open = 9;
	t = scrape();
	TAP_OK(probe_runs == 1 && value_of(t, "hfmirror_connections_open") == 7,
	       "a removed probe runs no more");
	free(t);
	hfm_metrics_add(HFM_M_UP_IN_FLIGHT + HFM_UPK_BLOB, 1);
	hfm_metrics_sub(HFM_M_UP_IN_FLIGHT + HFM_UPK_BLOB, 2);
	t = scrape();
	TAP_OK(value_of(t, "hfmirror_upstream_in_flight{kind=\"blob\"}") == -1,
	       "gauges are signed (a bug that goes below 0 shows)");
	hfm_metrics_add(HFM_M_UP_IN_FLIGHT + HFM_UPK_BLOB, 1);
	hfm_metrics_inc(hfm_m_up_error(HFM_UPK_API, HFM_UPE_STATUS));
	free(t);
	t = scrape();
	TAP_OK(value_of(t, "hfmirror_upstream_errors_total{kind=\"api\",reason=\"status\"}") == 1 &&
	       value_of(t, "hfmirror_upstream_errors_total{kind=\"blob\",reason=\"status\"}") == 0,
	       "two labels: the series of both values");
	check_format(t);
	free(t);
}

#define THREADS 4
#define ROUNDS 100000
static void *hammer(void *arg)
{
	(void)arg;
	for (int i = 0; i < ROUNDS; i++) {
		hfm_metrics_inc(HFM_M_WAITS);
		hfm_metrics_observe(HFM_H_REQUEST_SECONDS + HFM_MR_API, 1000);
	}
	return NULL;
}

static void test_threads(void)
{
	pthread_t t[THREADS];
	int64_t w0 = hfm_metrics_get(HFM_M_WAITS);
	for (int i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, hammer, NULL);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	TAP_IS_INT(hfm_metrics_get(HFM_M_WAITS) - w0, THREADS * ROUNDS,
		   "counters: no increment lost between threads");
	char *s = scrape();
	TAP_OK(value_of(s, "hfmirror_request_duration_seconds_count{route=\"api\"}") == THREADS * ROUNDS,
	       "histograms: no observation lost between threads");
	free(s);
}

int main(void)
{
	test_table();
	test_labels();
	test_escape();
	test_requests();
	test_probes_and_optional();
	test_threads();
	return tap_done();
}
