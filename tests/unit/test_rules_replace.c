/*
 * hfm_rules_replace(): a config reload swaps the rules under readers.  The
 * threaded part is what the ASan build is for: a list freed while a reader
 * still matched with it is a heap-use-after-free report there, and a reader
 * that saw half of one list and half of another gives a wrong answer for
 * the names both lists agree on.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include "hfm/rules.h"
#include "tap.h"

/* List A hides org/b, list B hides org/a; both allow keep/me and deny
 * everything under gone/.  The regexes make allow() allocate match data
 * and run PCRE2, so a freed list would be touched in several places. */
static const struct hfm_rule list_a[] = {
	{ "*/*", 1, 0 },
	{ "org/b", 0, 0 },
	{ "gone/.*", 0, 1 },
	{ "keep/m[e]$", 1, 1 },
};
static const struct hfm_rule list_b[] = {
	{ "*", 0, 0 },
	{ "org/a", 0, 1 },
	{ "org/[!a]", 1, 0 },
	{ "keep/*", 1, 0 },
	{ "gone/*", 0, 0 },
	{ "keep/me", 1, 1 },
};

static struct hfm_rules *compile(const struct hfm_rule *rules, size_t n)
{
	struct hfm_rules *r = NULL;
	if (hfm_rules_compile(&r, rules, n, NULL) < 0)
		return NULL;
	return r;
}

static void test_swap(void)
{
	struct hfm_rules *live = compile(list_a, HFM_ARRAY_SIZE(list_a));

	TAP_OK(live != NULL, "list A compiles");
	TAP_IS_INT(hfm_rules_allow(live, "org/a"), 1, "A: org/a allowed");
	TAP_IS_INT(hfm_rules_allow(live, "org/b"), 0, "A: org/b hidden");
	TAP_IS_INT(hfm_rules_count(live), 4, "A: 4 rules");
	hfm_rules_replace(live, compile(list_b, HFM_ARRAY_SIZE(list_b)));
	TAP_IS_INT(hfm_rules_allow(live, "org/a"), 0, "after replace with B: org/a hidden");
	TAP_IS_INT(hfm_rules_allow(live, "org/b"), 1, "after replace with B: org/b allowed");
	TAP_IS_INT(hfm_rules_count(live), 6, "after replace with B: 6 rules");
	TAP_IS_INT(hfm_rules_allow(live, "keep/me"), 1, "keep/me allowed by both");
	hfm_rules_replace(live, compile(list_a, HFM_ARRAY_SIZE(list_a)));
	TAP_IS_INT(hfm_rules_allow(live, "org/b"), 0, "back to A: org/b hidden again");
	hfm_rules_free(live);
}

#define NREADERS 8
#define SWAPS 2000

struct reader {
	const struct hfm_rules *r;
	atomic_int *stop;
	long calls, wrong, saw_a, saw_b;
};

static void *reader_main(void *arg)
{
	struct reader *w = arg;

	while (!atomic_load(w->stop)) {
		/* Names the lists agree on: any other answer is a torn read. */
		if (hfm_rules_allow(w->r, "keep/me") != 1 || hfm_rules_allow(w->r, "gone/x") != 0)
			w->wrong++;
		/* Names they disagree on: one list or the other, never neither. */
		int a = hfm_rules_allow(w->r, "org/a");
		if (a)
			w->saw_a++;
		else
			w->saw_b++;
		w->calls += 3;
	}
	return NULL;
}

static void test_swap_under_readers(void)
{
	struct hfm_rules *live = compile(list_a, HFM_ARRAY_SIZE(list_a));
	struct reader w[NREADERS] = { 0 };
	pthread_t tid[NREADERS];
	atomic_int stop = 0;
	int i, started = 0, swaps = 0;
	long calls = 0, wrong = 0, saw_a = 0, saw_b = 0;

	for (i = 0; i < NREADERS; i++) {
		w[i].r = live;
		w[i].stop = &stop;
		if (pthread_create(&tid[i], NULL, reader_main, &w[i]) == 0)
			started++;
	}
	for (i = 0; i < SWAPS; i++) {
		struct hfm_rules *fresh = (i & 1) ? compile(list_a, HFM_ARRAY_SIZE(list_a))
						  : compile(list_b, HFM_ARRAY_SIZE(list_b));
		if (!fresh)
			break;
		hfm_rules_replace(live, fresh);
		swaps++;
	}
	atomic_store(&stop, 1);
	for (i = 0; i < started; i++) {
		pthread_join(tid[i], NULL);
		calls += w[i].calls;
		wrong += w[i].wrong;
		saw_a += w[i].saw_a;
		saw_b += w[i].saw_b;
	}
	TAP_IS_INT(started, NREADERS, "%d readers started", NREADERS);
	TAP_IS_INT(swaps, SWAPS, "%d replaces while they read", SWAPS);
	TAP_IS_INT(wrong, 0, "%ld calls during the replaces: every answer from a whole list", calls);
	printf("# org/a allowed %ld times (list A), hidden %ld times (list B)\n", saw_a, saw_b);
	/* SWAPS is even: the last replace installed list A. */
	TAP_IS_INT(hfm_rules_allow(live, "org/a"), 1, "after the last replace the last list answers");
	hfm_rules_free(live);
}

int main(void)
{
	test_swap();
	test_swap_under_readers();
	return tap_done();
}
