/*
 * rules.h - Olah's access rules: which repositories may be proxied or cached.
 *
 * A rule list is what `[[accessibility.proxy]]` / `[[accessibility.cache]]`
 * hold in configs.toml.  Semantics are Olah's, so configs carry over, but for
 * case (the last point):
 *
 *  - A rule matches a repository name: "org/repo", or "repo" for canonical
 *    repositories without an org.  The repo type (model, dataset, space) is
 *    not part of the name, so one list governs all three.
 *  - Wildcard rules (use_re = 0) follow Python's fnmatch.fnmatch() on POSIX:
 *    the whole name must match; `*` matches any run of characters INCLUDING
 *    '/', so "*" alone matches every name; `?` matches one character (one
 *    Unicode code point, not one byte); `[seq]` / `[!seq]` match one character
 *    in / not in the set, with ranges `a-z`; a `[` without a closing `]` is a
 *    literal; a range whose ends are reversed (`[z-a]`) is dropped; there are
 *    no POSIX classes (`[[:alpha:]]` is the set "[:alph" followed by "]");
 *    backslash is an ordinary character; a leading '.' needs no special
 *    treatment.
 *  - Regex rules (use_re = 1) follow Python's re.match(): PCRE2 syntax,
 *    anchored at the START only, so "org/repo" also matches "org/repo-v2";
 *    Unicode-aware (\w, \d match non-ASCII as Python 3 str patterns do).
 *  - Unlike Olah, matching ignores case (ASCII letters in wildcards; regexes
 *    are caseless): the Hub's repo ids are case-insensitive, so "ACME/tiny"
 *    is the repo a rule for "acme/tiny" decides about.
 *  - The LAST matching rule decides; a name no rule matches is denied, and
 *    so is every name when the list is empty.
 *
 * A compiled list is a handle: any number of threads may call
 * hfm_rules_allow() on it at once, and one thread may meanwhile swap the
 * list it stands for with hfm_rules_replace() (a config reload on SIGHUP),
 * so that those who borrowed the handle (the catalog, the cache) see the
 * new rules without being told.
 */
#ifndef HFM_RULES_H
#define HFM_RULES_H

#include <stddef.h>
#include "buf.h"
#include "ident.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * One rule as written in the config.  The struct does not own `repo`; its
 * owner (struct hfm_config, or the caller) does.  hfm_rules_compile() copies
 * what it needs, so the rules may be freed once compiled.
 */
struct hfm_rule {
	char *repo;     /* pattern: fnmatch wildcard, or regex when use_re */
	int allow;      /* 1 allow, 0 deny (Olah's default when omitted) */
	int use_re;     /* 1 regex (re.match), 0 wildcard (fnmatch) */
};

/*
 * Ours: whom rule i is about, beside the rules (so Olah's three fields stay
 * the whole of struct hfm_rule).  With neither list, everyone (Olah's
 * rules).  With either, only a local user (ident.h) named in `users` or in
 * one of `groups`; "*" in `users` is every local user.  A rule about others
 * does not match: the rules before it decide.  Not owned.
 */
struct hfm_rule_who {
	char **users;
	size_t nusers;
	char **groups;
	size_t ngroups;
};

/*
 * Olah's list for `proxy` and for `cache` when configs.toml gives none: the
 * wildcards "*" and "*" "/" "*" (one string; a C comment cannot spell it),
 * both allowed, i.e. everything.  A list that IS given replaces
 * this one entirely (it is not appended to), so a config that lists only
 * denials denies everything: no rule matches the other names.
 */
#define HFM_RULES_DEFAULT_COUNT 2
extern const struct hfm_rule hfm_rules_default[HFM_RULES_DEFAULT_COUNT];

/* A compiled rule list (opaque). */
struct hfm_rules;

/*
 * Compile `n` rules (n may be 0: the list then denies everything).  Regexes
 * are compiled once, with PCRE2's JIT when the platform has it.
 * On a bad regex returns HFM_EINVAL, *out = NULL, and `err` (may be NULL)
 * receives "rule N: " followed by hfm_rules_check()'s message (N counts
 * from 0).
 */
int hfm_rules_compile(struct hfm_rules **out, const struct hfm_rule *rules, size_t n,
		      struct hfm_buf *err);
/* The same, rule i being about who[i] only (who may be NULL: everyone). */
int hfm_rules_compile_for(struct hfm_rules **out, const struct hfm_rule *rules,
			  const struct hfm_rule_who *who, size_t n, struct hfm_buf *err);

/*
 * Check one rule without keeping anything.  Every UTF-8 wildcard is valid
 * (as in Python every string is a pattern); one that is not UTF-8 gives
 * HFM_EINVAL and: pattern "PATTERN" is not valid UTF-8.  A bad regex gives
 * HFM_EINVAL and
 * `err` receives: invalid regular expression "PATTERN" at offset N: MESSAGE
 * (PCRE2's message and the offset, in code units, where it gave up).
 */
int hfm_rules_check(const struct hfm_rule *rule, struct hfm_buf *err);

/*
 * 1 if the list allows `name` ("org/repo" or "repo", as in hfm_repo_id.name:
 * no type prefix), 0 if it denies it.
 * NULL `r` or `name` denies, and so does a name that is not valid UTF-8 (no
 * Hub repository has one).  Safe to call concurrently.
 */
int hfm_rules_allow(const struct hfm_rules *r, const char *name);

/*
 * hfm_rules_allow() for a request by `who` (NULL: anonymous): rules with
 * users or groups match only when they name who.  hfm_rules_allow() is
 * this with NULL.
 */
int hfm_rules_allow_for(const struct hfm_rules *r, const char *name, const struct hfm_ident *who);

/* 1 if some rule of the list names users or groups. */
int hfm_rules_by_user(const struct hfm_rules *r);

/* Number of rules in a compiled list. */
size_t hfm_rules_count(const struct hfm_rules *r);

/*
 * Make `live` stand for the rules compiled in `fresh`, and free `fresh`
 * (the handle, not its rules, which now belong to `live`).
 *
 * Atomic for hfm_rules_allow(): each call decides with the old list or
 * the new one, never a mix, and there is no moment without a list.  The
 * old list is freed by whoever drops the last reference to it: this call
 * when no hfm_rules_allow() holds it, else the last such call as it
 * returns.  Why that is safe: a caller takes the current list and its
 * reference under the handle's mutex, and the swap changes the pointer
 * under the same mutex, so no reader can hold a pointer without holding a
 * reference; the count is atomic, so exactly one of them sees it reach 0.
 * The mutex is held for the load and increment only, never while matching,
 * so a reload does not wait for slow matches nor they for it.
 *
 * Any thread may call it, one at a time per `live` handle (a second
 * concurrent replace is safe too, the last one wins); hfm_rules_free(live)
 * must still wait until no call uses the handle at all.
 */
void hfm_rules_replace(struct hfm_rules *live, struct hfm_rules *fresh);

void hfm_rules_free(struct hfm_rules *r);

#ifdef __cplusplus
}
#endif

#endif
