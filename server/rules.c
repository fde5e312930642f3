/*
 * rules.c - Olah's access rules: fnmatch wildcards and re.match regexes.
 *
 * Wildcards are matched by our own small matcher rather than glibc's
 * fnmatch(3) because glibc disagrees with Python where configs could notice:
 * it knows POSIX classes ("[[:alpha:]]"), and in the C locale its `?` matches
 * one byte of "é" where Python matches the whole character.  The matcher works
 * on code points and has no recursion: a `*` only ever needs to remember the
 * latest star (every other token matches exactly one character), so matching
 * is O(pattern x name) however many stars a pattern has.
 *
 * Matching ignores case, where Olah's (on POSIX) does not: the Hub looks repo
 * ids up case-insensitively (huggingface.co/ACME/Tiny is acme/tiny), so a
 * rule that denied "acme/tiny" but let "ACME/tiny" through would deny
 * nothing the upstream serves.  Wildcards fold ASCII letters, the only ones
 * a repo id may hold, in pattern and name alike (as Python's fnmatch does on
 * Windows, through normcase); regexes are compiled caseless.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "hfm/rules.h"

enum glob_op {
	GLOB_LIT,       /* one given code point */
	GLOB_ANY,       /* `?` */
	GLOB_STAR,      /* `*`, runs of stars collapsed */
	GLOB_SET,       /* `[...]` */
};

struct glob_range {
	uint32_t lo, hi;    /* a single member has lo == hi */
};

struct glob_tok {
	enum glob_op op;
	uint32_t cp;                  /* GLOB_LIT */
	int negate;                   /* GLOB_SET: `[!...]` */
	size_t nranges;               /* GLOB_SET: 0 is legal (all ranges dropped) */
	struct glob_range *ranges;
};

struct compiled_rule {
	int allow;
	char **users, **groups;       /* copies; NULL/0: the rule is about everyone */
	size_t nusers, ngroups;
	pcre2_code *re;               /* regex rules; NULL for wildcards */
	struct glob_tok *toks;        /* wildcard rules */
	size_t ntoks;
};

/* A compiled list: immutable once built, freed by its last reference. */
struct rule_set {
	atomic_size_t refs;           /* the handle's, plus one per allow() in progress */
	size_t n;
	int has_re;                   /* whether allow() needs match data */
	int by_user;                  /* some rule names users or groups */
	struct compiled_rule rule[];
};

/*
 * The handle everyone borrows.  `set` changes only in hfm_rules_replace();
 * `mu` makes "read set, take a reference" one step, so a replace cannot
 * free a set between a reader's load and its increment.  The lock is held
 * for those two instructions only, never while matching.
 */
struct hfm_rules {
	pthread_mutex_t mu;
	struct rule_set *set;
};

const struct hfm_rule hfm_rules_default[HFM_RULES_DEFAULT_COUNT] = {
	{ "*", 1, 0 },
	{ "*/*", 1, 0 },
};

/*
 * Patterns and names are checked for UTF-8 before they get here; should a
 * stray byte slip through anyway it stands for itself (as U+DC80..U+DCFF,
 * Python's surrogateescape), so decoding always makes progress.
 */
static size_t next_cp(uint32_t *cp, const char *s, size_t len)
{
	size_t n = hfm_utf8_next(cp, s, len);

	if (n)
		return n;
	*cp = 0xdc00 + (unsigned char)s[0];
	return 1;
}

/*
 * No Hub repository name has bytes that are not UTF-8, and Olah only ever
 * matched decoded text, so such a name is denied before any rule sees it.
 */
static int valid_utf8(const char *s, size_t *len)
{
	size_t n = strlen(s), off = 0, step;

	while (off < n) {
		step = hfm_utf8_next(NULL, s + off, n - off);
		if (!step)
			return 0;
		off += step;
	}
	*len = n;
	return 1;
}

static uint32_t fold(uint32_t c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* The pattern's code points, case-folded. */
static uint32_t *decode_all(size_t *count, const char *s)
{
	size_t len = strlen(s), off = 0, n = 0;
	uint32_t *cps = hfm_malloc((len + 1) * sizeof(*cps));

	while (off < len) {
		off += next_cp(&cps[n], s + off, len - off);
		cps[n] = fold(cps[n]);
		n++;
	}
	*count = n;
	return cps;
}

/*
 * Parse the set between p[start] and p[end] (the closing `]`, exclusive), as
 * Python's fnmatch.translate reads it: an optional leading `!` negates; a
 * hyphen between two members makes a range, except that the member right
 * after a range cannot start another one; a reversed range is dropped with
 * both its ends.
 */
static void glob_parse_set(struct glob_tok *t, const uint32_t *p, size_t start, size_t end)
{
	size_t k = start;

	t->op = GLOB_SET;
	t->negate = p[k] == '!';
	k += t->negate;
	t->ranges = hfm_malloc((end - k + 1) * sizeof(*t->ranges));
	t->nranges = 0;
	while (k < end) {
		if (k + 2 < end && p[k + 1] == '-') {
			if (p[k] <= p[k + 2]) {
				t->ranges[t->nranges].lo = p[k];
				t->ranges[t->nranges].hi = p[k + 2];
				t->nranges++;
			}
			k += 3;
		} else {
			t->ranges[t->nranges].lo = t->ranges[t->nranges].hi = p[k];
			t->nranges++;
			k++;
		}
	}
}

static void glob_compile(struct compiled_rule *cr, const char *pattern)
{
	size_t n, i = 0, j;
	uint32_t *p = decode_all(&n, pattern);
	struct glob_tok *t;

	cr->toks = hfm_calloc(n + 1, sizeof(*cr->toks));
	cr->ntoks = 0;
	while (i < n) {
		t = &cr->toks[cr->ntoks];
		if (p[i] == '*') {
			i++;
			if (cr->ntoks && cr->toks[cr->ntoks - 1].op == GLOB_STAR)
				continue;
			t->op = GLOB_STAR;
		} else if (p[i] == '?') {
			t->op = GLOB_ANY;
			i++;
		} else if (p[i] == '[') {
			/* `!` and then `]` right after `[` are members, not the end. */
			j = i + 1;
			if (j < n && p[j] == '!')
				j++;
			if (j < n && p[j] == ']')
				j++;
			while (j < n && p[j] != ']')
				j++;
			if (j >= n) {
				t->op = GLOB_LIT;   /* unclosed: a literal `[` */
				t->cp = '[';
				i++;
			} else {
				glob_parse_set(t, p, i + 1, j);
				i = j + 1;
			}
		} else {
			t->op = GLOB_LIT;
			t->cp = p[i++];
		}
		cr->ntoks++;
	}
	free(p);
}

static int glob_tok_matches(const struct glob_tok *t, uint32_t c)
{
	size_t i;
	int found = 0;

	switch (t->op) {
	case GLOB_LIT:
		return t->cp == c;
	case GLOB_ANY:
		return 1;
	case GLOB_SET:
		for (i = 0; i < t->nranges && !found; i++)
			found = t->ranges[i].lo <= c && c <= t->ranges[i].hi;
		return found != t->negate;
	case GLOB_STAR:
		break;
	}
	return 0;
}

static int glob_match(const struct compiled_rule *cr, const char *name, size_t len)
{
	size_t p = 0, off = 0, star_p = 0, star_off = 0, step;
	int have_star = 0;
	uint32_t c;

	while (off < len) {
		if (p < cr->ntoks && cr->toks[p].op == GLOB_STAR) {
			have_star = 1;
			star_p = ++p;
			star_off = off;
			continue;
		}
		step = next_cp(&c, name + off, len - off);
		if (p < cr->ntoks && glob_tok_matches(&cr->toks[p], fold(c))) {
			p++;
			off += step;
			continue;
		}
		if (!have_star)
			return 0;
		/* Let the latest star swallow one more character and retry. */
		star_off += next_cp(&c, name + star_off, len - star_off);
		off = star_off;
		p = star_p;
	}
	while (p < cr->ntoks && cr->toks[p].op == GLOB_STAR)
		p++;
	return p == cr->ntoks;
}

/*
 * re.match() semantics: anchored at the start only.  UTF + UCP make \w, \d
 * and case folding Unicode-aware as Python 3's str patterns are; CASELESS
 * because repo ids are (see the top).  Names are checked for UTF-8 before
 * matching, hence NO_UTF_CHECK there.
 */
static pcre2_code *regex_compile(const char *pattern, struct hfm_buf *err)
{
	pcre2_code *re;
	int code;
	PCRE2_SIZE off;
	PCRE2_UCHAR msg[256];

	re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
			   PCRE2_ANCHORED | PCRE2_UTF | PCRE2_UCP | PCRE2_CASELESS,
			   &code, &off, NULL);
	if (!re && err) {
		if (pcre2_get_error_message(code, msg, sizeof(msg)) < 0)
			strcpy((char *)msg, "unknown error");
		hfm_buf_printf(err, "invalid regular expression \"%s\" at offset %zu: %s",
			       pattern, (size_t)off, (const char *)msg);
	}
	return re;
}

int hfm_rules_check(const struct hfm_rule *rule, struct hfm_buf *err)
{
	pcre2_code *re;
	size_t len;

	if (!rule->repo) {
		if (err)
			hfm_buf_puts(err, "rule has no repo pattern");
		return HFM_EINVAL;
	}
	if (!rule->use_re) {
		if (valid_utf8(rule->repo, &len))
			return 0;
		if (err)
			hfm_buf_printf(err, "pattern \"%s\" is not valid UTF-8", rule->repo);
		return HFM_EINVAL;
	}
	re = regex_compile(rule->repo, err);
	if (!re)
		return HFM_EINVAL;
	pcre2_code_free(re);
	return 0;
}

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static char **copy_strv(char *const *v, size_t n)
{
	char **out = n ? hfm_calloc(n, sizeof(*out)) : NULL;
	for (size_t i = 0; i < n; i++)
		out[i] = hfm_strdup(v[i]);
	return out;
}

/* Is the rule about `who`? */
static int rule_is_for(const struct compiled_rule *cr, const struct hfm_ident *who)
{
	if (!cr->nusers && !cr->ngroups)
		return 1;
	if (!who || !who->name)
		return 0;
	for (size_t i = 0; i < cr->nusers; i++)
		if (!strcmp(cr->users[i], "*") || !strcmp(cr->users[i], who->name))
			return 1;
	for (size_t i = 0; i < cr->ngroups; i++)
		if (hfm_ident_in_group(who, cr->groups[i]))
			return 1;
	return 0;
}

static void set_unref(struct rule_set *set)
{
	size_t i, k;

	if (!set || atomic_fetch_sub(&set->refs, 1) != 1)
		return;
	for (i = 0; i < set->n; i++) {
		pcre2_code_free(set->rule[i].re);
		for (k = 0; k < set->rule[i].ntoks; k++)
			free(set->rule[i].toks[k].ranges);
		free(set->rule[i].toks);
		free_strv(set->rule[i].users, set->rule[i].nusers);
		free_strv(set->rule[i].groups, set->rule[i].ngroups);
	}
	free(set);
}

/* The current set, with a reference the caller drops with set_unref(). */
static struct rule_set *set_get(const struct hfm_rules *r)
{
	/* The mutex is the handle's bookkeeping, not part of the list it
	 * stands for: taking it does not change what a const caller sees. */
	pthread_mutex_t *mu = (pthread_mutex_t *)&r->mu;
	struct rule_set *set;

	pthread_mutex_lock(mu);
	set = r->set;
	atomic_fetch_add(&set->refs, 1);
	pthread_mutex_unlock(mu);
	return set;
}

int hfm_rules_compile(struct hfm_rules **out, const struct hfm_rule *rules, size_t n,
		      struct hfm_buf *err)
{
	return hfm_rules_compile_for(out, rules, NULL, n, err);
}

int hfm_rules_compile_for(struct hfm_rules **out, const struct hfm_rule *rules,
			  const struct hfm_rule_who *who, size_t n, struct hfm_buf *err)
{
	struct hfm_rules *r;
	struct rule_set *set;
	struct hfm_buf why = HFM_BUF_INIT(1024);
	size_t i;
	int error = 0;

	*out = NULL;
	set = hfm_calloc(1, sizeof(*set) + n * sizeof(set->rule[0]));
	atomic_init(&set->refs, 1);
	for (i = 0; i < n; i++) {
		struct compiled_rule *cr = &set->rule[i];

		if ((error = hfm_rules_check(&rules[i], &why)) < 0) {
			if (err)
				hfm_buf_printf(err, "rule %zu: %s", i, hfm_buf_cstr(&why));
			goto cleanup;
		}
		cr->allow = rules[i].allow ? 1 : 0;
		if (who) {
			cr->users = copy_strv(who[i].users, who[i].nusers);
			cr->nusers = who[i].nusers;
			cr->groups = copy_strv(who[i].groups, who[i].ngroups);
			cr->ngroups = who[i].ngroups;
		}
		set->by_user |= cr->nusers || cr->ngroups;
		set->n = i + 1;
		if (rules[i].use_re) {
			cr->re = regex_compile(rules[i].repo, NULL);
			/* Without JIT support the interpreter is used; same results. */
			pcre2_jit_compile(cr->re, PCRE2_JIT_COMPLETE);
			set->has_re = 1;
		} else {
			glob_compile(cr, rules[i].repo);
		}
	}
	r = hfm_calloc(1, sizeof(*r));
	pthread_mutex_init(&r->mu, NULL);
	r->set = set;
	*out = r;
	set = NULL;

cleanup:
	set_unref(set);
	hfm_buf_dispose(&why);
	return error;
}

int hfm_rules_allow(const struct hfm_rules *r, const char *name)
{
	return hfm_rules_allow_for(r, name, NULL);
}

int hfm_rules_by_user(const struct hfm_rules *r)
{
	if (!r)
		return 0;
	struct rule_set *set = set_get(r);
	int by = set->by_user;
	set_unref(set);
	return by;
}

int hfm_rules_allow_for(const struct hfm_rules *r, const char *name, const struct hfm_ident *who)
{
	pcre2_match_data *md = NULL;
	struct rule_set *set;
	size_t i, len;
	int rc, allow = 0;

	if (!r || !name || !valid_utf8(name, &len))
		return 0;
	/* One list decides the whole call, even if it is replaced meanwhile. */
	set = set_get(r);
	/* Match data is per call, which is what makes concurrent calls safe;
	 * one pair is enough since we only ask whether it matched. */
	if (set->has_re)
		md = pcre2_match_data_create(1, NULL);
	/* The last matching rule wins, so the first match from the end decides. */
	for (i = set->n; i-- > 0;) {
		const struct compiled_rule *cr = &set->rule[i];

		if (!rule_is_for(cr, who))
			continue;
		if (cr->re) {
			rc = pcre2_match(cr->re, (PCRE2_SPTR)name, len, 0, PCRE2_NO_UTF_CHECK,
					 md, NULL);
			if (rc == PCRE2_ERROR_NOMATCH)
				continue;
			/* A match limit or other failure: fail closed rather than let a
			 * skipped deny rule turn into an allow. */
			if (rc < 0)
				break;
		} else if (!glob_match(cr, name, len)) {
			continue;
		}
		allow = cr->allow;
		break;
	}
	pcre2_match_data_free(md);
	set_unref(set);
	return allow;
}

size_t hfm_rules_count(const struct hfm_rules *r)
{
	struct rule_set *set;
	size_t n;

	if (!r)
		return 0;
	set = set_get(r);
	n = set->n;
	set_unref(set);
	return n;
}

void hfm_rules_replace(struct hfm_rules *live, struct hfm_rules *fresh)
{
	struct rule_set *old;

	pthread_mutex_lock(&live->mu);
	old = live->set;
	live->set = fresh->set;
	pthread_mutex_unlock(&live->mu);
	fresh->set = NULL;
	hfm_rules_free(fresh);
	/* Calls that took `old` before the swap keep it alive until they end. */
	set_unref(old);
}

void hfm_rules_free(struct hfm_rules *r)
{
	if (!r)
		return;
	set_unref(r->set);
	pthread_mutex_destroy(&r->mu);
	free(r);
}
