/*
 * Access rules: Olah's semantics.  Every wildcard and regex expectation below
 * was produced by Python 3.11's fnmatch.fnmatch() / re.match(), which is what
 * Olah runs, so a difference here is a config that would behave differently.
 */
#include <pthread.h>
#include <stdio.h>

#include "hfm/rules.h"
#include "tap.h"

/* One rule allowing `pattern`: allow() then says whether it matches. */
static int matches(const char *pattern, int use_re, const char *name)
{
	struct hfm_rule rule = { (char *)pattern, 1, use_re };
	struct hfm_rules *r = NULL;
	int got;

	if (hfm_rules_compile(&r, &rule, 1, NULL) < 0)
		return -1;
	got = hfm_rules_allow(r, name);
	hfm_rules_free(r);
	return got;
}

static void glob(const char *pattern, const char *name, int want)
{
	TAP_IS_INT(matches(pattern, 0, name), want, "fnmatch('%s', '%s') is %s", name, pattern,
		   want ? "True" : "False");
}

static void regex(const char *pattern, const char *name, int want)
{
	TAP_IS_INT(matches(pattern, 1, name), want, "re.match('%s', '%s') %s", pattern, name,
		   want ? "matches" : "does not match");
}

static void test_wildcards(void)
{
	/* `*` crosses the slash, so Olah's two default rules cover everything. */
	glob("*", "org/repo", 1);
	glob("*", "gpt2", 1);
	glob("*", "", 1);
	glob("*/*", "org/repo", 1);
	glob("*/*", "gpt2", 0);
	glob("*/*", "a/b/c", 1);
	glob("org/*", "org/repo", 1);
	glob("org/*", "org/", 1);
	glob("org/*", "org2/repo", 0);
	glob("org/repo*", "org/repo-v2", 1);
	glob("org/repo*", "org/repo", 1);
	glob("org/repo*", "org/rep", 0);
	glob("org/repo", "org/repo-v2", 0);     /* wildcards match the whole name */
	/* Case is ignored, as the Hub ignores it in repo ids (unlike Olah). */
	glob("ORG/*", "org/repo", 1);
	glob("org/repo", "ORG/Repo", 1);
	glob("[A-C]cme/x", "acme/x", 1);
	glob("[a-c]cme/x", "Acme/x", 1);
	glob("[!a]cme/x", "Acme/x", 0);
	glob("org/repo", "org/repo2", 0);
	glob("*.bin", "a/b.bin", 1);
	glob("a*b*c", "aXbYc", 1);
	glob("a*b*c", "aXbY", 0);
	glob("*a*a*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0);
	/* `?`: exactly one character, a code point rather than a byte. */
	glob("?", "a", 1);
	glob("?", "\xc3\xa9", 1);
	glob("??", "\xc3\xa9", 0);
	glob("?", "", 0);
	glob("org/?epo", "org/repo", 1);
	glob("org/?epo", "org//epo", 1);
	TAP_IS_INT(matches("?", 0, "\n"), 1, "fnmatch('\\n', '?') is True");
	/* Leading dots are ordinary characters. */
	glob("*", ".hidden", 1);
	glob(".*", ".x", 1);
	glob("org/*", "org/.git", 1);
	/* Sets. */
	glob("[abc]*", "a/x", 1);
	glob("[!abc]*", "a/x", 0);
	glob("[!abc]*", "d/x", 1);
	glob("[a-c]", "b", 1);
	glob("[a-c]", "d", 0);
	glob("[a-c-e]", "-", 1);
	glob("[a-c-e]", "d", 0);
	glob("[a-c-e]", "e", 1);
	glob("[-a]", "-", 1);
	glob("[a-]", "-", 1);
	glob("[z-a]", "z", 0);                  /* reversed range: dropped, ends too */
	glob("[z-a]", "a", 0);
	glob("[!z-a]", "q", 1);                 /* nothing left to exclude */
	glob("[!z-a]", "z", 1);
	glob("[a--]", "-", 0);
	glob("[a--]", "a", 0);
	glob("[]]", "]", 1);                    /* `]` first is a member */
	glob("[!]]", "a", 1);
	glob("[!]]", "]", 0);
	glob("[^a]", "^", 1);                   /* `^` is not negation */
	glob("[^a]", "b", 0);
	glob("[a&&b]", "&", 1);
	glob("[a|b]", "|", 1);
	glob("[\xc3\xa9]", "\xc3\xa9", 1);
	glob("[\xc3\xa0-\xc3\xaa]", "\xc3\xa9", 1);
	/* No POSIX classes: "[[:alpha:]]" is the set "[:alph" then "]". */
	glob("[[:alpha:]]", "a", 0);
	glob("[[:alpha:]]", "a]", 1);
	glob("[[:alpha:]]", ":]", 1);
	/* An unclosed `[` is literal. */
	glob("[", "[", 1);
	glob("[abc", "[abc", 1);
	glob("[!]", "[!]", 1);
	glob("a[!]b", "a[!]b", 1);
	/* Backslash is an ordinary character, not an escape. */
	glob("\\*", "\\x", 1);
	glob("\\*", "*", 0);
	glob("a\\b", "a\\b", 1);
	glob("[\\]", "\\", 1);
	/* A name that is not UTF-8 is no Hub name: denied even by `*`. */
	glob("*", "a\xff" "b", 0);
	glob("a?b", "a\xff" "b", 0);
	glob("*", "\xc3", 0);                  /* truncated sequence */
	glob("*", "\xed\xa0\x80", 0);          /* encoded surrogate */
}

static void test_regex(void)
{
	/* re.match: anchored at the start, not at the end. */
	regex("org/repo", "org/repo", 1);
	regex("org/repo", "org/repo-v2", 1);
	regex("org/repo", "x/org/repo", 0);
	regex("org/repo$", "org/repo-v2", 0);
	regex("mistralai/Mistral.*", "mistralai/Mistral-7B", 1);
	regex("mistralai/Mistral.*", "mistralai/mistral", 1);   /* caseless, as Hub ids */
	regex("acme/secret$", "ACME/Secret", 1);
	regex("acme/[a-z]+$", "acme/ABC", 1);
	regex("acme/secret$", "acme/secret2", 0);
	regex("", "anything", 1);
	regex(".*-gguf$", "a/b-gguf", 1);
	regex("(?i)ORG/.*", "org/a", 1);
	regex("\\w+/x", "\xc3\xa9/x", 1);       /* Unicode \w, as Python 3 */
	regex("[^/]+$", "gpt2", 1);
	regex("[^/]+$", "org/repo", 0);
	regex("a.c", "a\xff" "c", 0);           /* not UTF-8: denied, not an error */
	regex("", "\xff", 0);
}

static int allow_seq(const struct hfm_rule *rules, size_t n, const char *name)
{
	struct hfm_rules *r = NULL;
	int got;

	if (hfm_rules_compile(&r, rules, n, NULL) < 0)
		return -1;
	got = hfm_rules_allow(r, name);
	hfm_rules_free(r);
	return got;
}

static void test_precedence(void)
{
	/* Olah's shipped sample list. */
	struct hfm_rule sample[] = {
		{ "*", 1, 0 },
		{ "*/*", 1, 0 },
		{ "cais/mmlu", 1, 0 },
		{ "adept/fuyu-8b", 0, 0 },
		{ "mistralai/*", 1, 0 },
		{ "mistralai/Mistral.*", 0, 1 },
	};
	struct hfm_rule whitelist[] = {
		{ "cais/mmlu", 1, 0 },
		{ "adept/fuyu-8b", 0, 0 },
	};
	struct hfm_rule flip[] = {
		{ "org/*", 0, 0 },
		{ "org/*", 1, 0 },
		{ "org/secret", 0, 0 },
	};
	struct hfm_rules *r = NULL;

	TAP_IS_INT(allow_seq(sample, 6, "gpt2"), 1, "sample: canonical repo allowed by *");
	TAP_IS_INT(allow_seq(sample, 6, "cais/mmlu"), 1, "sample: cais/mmlu allowed");
	TAP_IS_INT(allow_seq(sample, 6, "adept/fuyu-8b"), 0, "sample: later deny wins");
	TAP_IS_INT(allow_seq(sample, 6, "adept/other"), 1, "sample: other adept repo allowed");
	TAP_IS_INT(allow_seq(sample, 6, "mistralai/Mixtral-8x7B"), 1, "sample: mistralai/* allows");
	TAP_IS_INT(allow_seq(sample, 6, "mistralai/Mistral-7B-v0.1"), 0,
		   "sample: the regex deny after it wins");
	TAP_IS_INT(allow_seq(whitelist, 2, "cais/mmlu"), 1, "whitelist: listed repo allowed");
	TAP_IS_INT(allow_seq(whitelist, 2, "gpt2"), 0, "whitelist: no match denies");
	TAP_IS_INT(allow_seq(whitelist, 2, "adept/fuyu-8b"), 0, "whitelist: explicit deny");
	TAP_IS_INT(allow_seq(flip, 3, "org/a"), 1, "last of two matching rules wins");
	TAP_IS_INT(allow_seq(flip, 3, "org/secret"), 0, "a later, narrower deny wins");
	TAP_IS_INT(allow_seq(flip, 2, "other/a"), 0, "no matching rule denies");
	TAP_IS_INT(allow_seq(NULL, 0, "org/repo"), 0, "empty list denies");
	TAP_IS_INT(allow_seq(NULL, 0, "gpt2"), 0, "empty list denies canonical repos");

	TAP_IS_INT(hfm_rules_compile(&r, sample, 6, NULL), 0, "compile sample");
	TAP_IS_INT(hfm_rules_count(r), 6, "six rules compiled");
	TAP_IS_INT(hfm_rules_allow(r, NULL), 0, "NULL name denied");
	TAP_IS_INT(hfm_rules_allow(NULL, "gpt2"), 0, "NULL list denies");
	hfm_rules_free(r);
}

static void test_defaults(void)
{
	const struct hfm_rule *d = hfm_rules_default;
	size_t n = HFM_RULES_DEFAULT_COUNT;
	struct hfm_rule deny_one[] = { { "org/secret", 0, 0 } };

	TAP_IS_INT(n, 2, "Olah's default list has two rules");
	TAP_IS_STR(d[0].repo, "*", "first default rule is *");
	TAP_IS_STR(d[1].repo, "*/*", "second default rule is */*");
	TAP_IS_INT(allow_seq(d, n, "gpt2"), 1, "defaults allow canonical repos");
	TAP_IS_INT(allow_seq(d, n, "org/repo"), 1, "defaults allow org/repo");
	TAP_IS_INT(allow_seq(d, n, "a/b/c"), 1, "defaults allow any name");
	/* A given list replaces the defaults: a lone deny denies the rest too. */
	TAP_IS_INT(allow_seq(deny_one, 1, "org/secret"), 0, "given list: denied repo");
	TAP_IS_INT(allow_seq(deny_one, 1, "org/public"), 0,
		   "given list replaces defaults: unmatched repo denied");
}

static void test_errors(void)
{
	struct hfm_rule bad[] = {
		{ "*", 1, 0 },
		{ "org/(repo", 1, 1 },
	};
	struct hfm_rule nopat = { NULL, 1, 0 };
	struct hfm_buf err = HFM_BUF_INIT(1024);
	struct hfm_rules *r = (struct hfm_rules *)&err;

	TAP_IS_INT(hfm_rules_compile(&r, bad, 2, &err), HFM_EINVAL, "bad regex refused");
	TAP_OK(r == NULL, "no list on failure");
	TAP_IS_STR(hfm_buf_cstr(&err),
		   "rule 1: invalid regular expression \"org/(repo\" at offset 9: "
		   "missing closing parenthesis", "error names rule, pattern, offset, reason");
	hfm_buf_reset(&err);
	TAP_IS_INT(hfm_rules_check(&bad[1], &err), HFM_EINVAL, "check finds it too");
	TAP_IS_STR(hfm_buf_cstr(&err),
		   "invalid regular expression \"org/(repo\" at offset 9: "
		   "missing closing parenthesis", "check message");
	hfm_buf_reset(&err);
	TAP_IS_INT(hfm_rules_check(&bad[0], &err), 0, "any wildcard is valid");
	TAP_IS_INT(hfm_rules_check(&(struct hfm_rule){ "[", 0, 0 }, &err), 0,
		   "an unclosed bracket is a valid wildcard");
	TAP_IS_INT(hfm_rules_check(&(struct hfm_rule){ "a{2,", 0, 1 }, &err), 0,
		   "a{2, is a literal in PCRE2 as in Python");
	TAP_IS_INT(hfm_rules_check(&(struct hfm_rule){ "a\xff*", 1, 0 }, &err), HFM_EINVAL,
		   "a wildcard that is not UTF-8 is refused");
	TAP_IS_STR(hfm_buf_cstr(&err), "pattern \"a\xff*\" is not valid UTF-8",
		   "not-UTF-8 wildcard message");
	hfm_buf_reset(&err);
	TAP_IS_INT(hfm_rules_check(&(struct hfm_rule){ "a\xff", 1, 1 }, &err), HFM_EINVAL,
		   "a regex that is not UTF-8 is refused");
	hfm_buf_reset(&err);
	TAP_IS_INT(hfm_rules_check(&nopat, &err), HFM_EINVAL, "missing pattern refused");
	TAP_IS_STR(hfm_buf_cstr(&err), "rule has no repo pattern", "missing pattern message");
	hfm_buf_reset(&err);
	TAP_IS_INT(hfm_rules_check(&(struct hfm_rule){ "*", 0, 1 }, &err), HFM_EINVAL,
		   "'*' is a bad regex");
	TAP_IS_STR(hfm_buf_cstr(&err),
		   "invalid regular expression \"*\" at offset 0: "
		   "quantifier does not follow a repeatable item", "'*' regex message");
	hfm_buf_dispose(&err);
}

#define NTHREADS 16
#define ROUNDS 20000

struct worker {
	const struct hfm_rules *r;
	int wrong;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	static const struct {
		const char *name;
		int allow;
	} expect[] = {
		{ "gpt2", 1 }, { "cais/mmlu", 1 }, { "adept/fuyu-8b", 0 },
		{ "mistralai/Mistral-7B", 0 }, { "mistralai/Mixtral", 1 },
		{ "meta-llama/Llama-2-7b", 0 }, { "meta-llama/Llama-2-7b-hf", 1 },
	};
	int i;

	for (i = 0; i < ROUNDS; i++) {
		size_t k = (size_t)i % HFM_ARRAY_SIZE(expect);

		if (hfm_rules_allow(w->r, expect[k].name) != expect[k].allow)
			w->wrong++;
	}
	return NULL;
}

static void test_threads(void)
{
	struct hfm_rule rules[] = {
		{ "*", 1, 0 },
		{ "*/*", 1, 0 },
		{ "adept/fuyu-8b", 0, 0 },
		{ "mistralai/Mistral.*", 0, 1 },
		{ "meta-llama/.*", 0, 1 },
		{ "meta-llama/*-hf", 1, 0 },
	};
	struct hfm_rules *r = NULL;
	struct worker w[NTHREADS];
	pthread_t tid[NTHREADS];
	int i, started = 0, wrong = 0;

	TAP_IS_INT(hfm_rules_compile(&r, rules, HFM_ARRAY_SIZE(rules), NULL), 0,
		   "compile mixed list");
	for (i = 0; i < NTHREADS; i++) {
		w[i].r = r;
		w[i].wrong = 0;
		if (pthread_create(&tid[i], NULL, worker_main, &w[i]) == 0)
			started++;
	}
	for (i = 0; i < started; i++) {
		pthread_join(tid[i], NULL);
		wrong += w[i].wrong;
	}
	TAP_IS_INT(started, NTHREADS, "%d threads started", NTHREADS);
	TAP_IS_INT(wrong, 0, "%d concurrent calls each, all answers right", ROUNDS);
	hfm_rules_free(r);
}

/* Rules about users and groups: only for them; everyone else skips them. */
static void test_users_groups(void)
{
	struct hfm_rule rules[] = {
		{ "*", 1, 0 },
		{ "vision/*", 0, 0 },
		{ "vision/*", 1, 0 },
		{ "nlp/*", 0, 0 },
		{ "nlp/*", 1, 0 },
		{ "nlp/secret", 0, 0 },
		{ "^nlp/secret$", 1, 1 },
	};
	char *vision[] = { "vision" }, *nlp[] = { "nlp" }, *carol[] = { "carol" }, *any[] = { "*" };
	struct hfm_rule_who who[7] = {
		[2] = { .groups = vision, .ngroups = 1 },
		[4] = { .groups = nlp, .ngroups = 1 },
		[5] = { .users = any, .nusers = 1 },
		[6] = { .users = carol, .nusers = 1 },
	};
	char *g_vision[] = { "vision" }, *g_both[] = { "nlp", "vision" };
	struct hfm_ident ann = { .name = "ann", .groups = g_vision, .ngroups = 1 };
	struct hfm_ident bob = { .name = "bob", .groups = g_both, .ngroups = 2 };
	struct hfm_ident carol_ = { .name = "carol" };
	struct hfm_rules *r = NULL;

	TAP_IS_INT(hfm_rules_compile_for(&r, rules, who, 7, NULL), 0, "compile rules with users and groups");
	TAP_IS_INT(hfm_rules_by_user(r), 1, "they are about users");
	TAP_IS_INT(hfm_rules_allow_for(r, "vision/cam", &ann), 1, "a vision member sees vision/*");
	TAP_IS_INT(hfm_rules_allow_for(r, "VISION/cam", &ann), 1, "in any case");
	TAP_IS_INT(hfm_rules_allow_for(r, "nlp/bert", &ann), 0, "not nlp/*");
	TAP_IS_INT(hfm_rules_allow_for(r, "nlp/bert", &bob), 1, "a member of both sees nlp/*");
	TAP_IS_INT(hfm_rules_allow_for(r, "vision/cam", &bob), 1, "and vision/*");
	TAP_IS_INT(hfm_rules_allow_for(r, "nlp/secret", &bob), 0, "a rule for every user (\"*\") denies nlp/secret");
	TAP_IS_INT(hfm_rules_allow_for(r, "nlp/secret", &carol_), 1, "but carol's own regex rule comes last");
	TAP_IS_INT(hfm_rules_allow_for(r, "nlp/bert", &carol_), 0, "carol is in no group");
	TAP_IS_INT(hfm_rules_allow_for(r, "vision/cam", NULL), 0, "anonymous: rules for users never match");
	TAP_IS_INT(hfm_rules_allow_for(r, "nlp/secret", NULL), 0, "nor a rule for \"*\"");
	TAP_IS_INT(hfm_rules_allow_for(r, "acme/tiny", NULL), 1, "the rules for everyone still apply");
	TAP_IS_INT(hfm_rules_allow(r, "vision/cam"), 0, "hfm_rules_allow() is anonymous");
	hfm_rules_free(r);
	TAP_IS_INT(hfm_rules_compile(&r, rules, 7, NULL), 0, "the same rules for everyone");
	TAP_IS_INT(hfm_rules_by_user(r), 0, "are about nobody in particular");
	TAP_IS_INT(hfm_rules_allow_for(r, "nlp/secret", NULL), 1, "and the last one decides");
	hfm_rules_free(r);
}

int main(void)
{
	test_wildcards();
	test_regex();
	test_precedence();
	test_defaults();
	test_errors();
	test_threads();
	test_users_groups();
	return tap_done();
}
