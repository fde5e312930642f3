/*
 * ident.h - who is asking: a local user and the groups the tokens file
 * gives them (tokens.h), or nobody (anonymous).
 *
 * An identity is plain data owned by whoever filled it (the app fills one
 * per request from its token, hfm_tokens_check(); hfm_ident_dispose()
 * frees it).  Lower layers only read it: the catalog's rules by user and
 * group, the cache's offline grants.  A request without a valid local
 * token has no identity: the pointer that would carry it is NULL.
 */
#ifndef HFM_IDENT_H
#define HFM_IDENT_H

#include <stddef.h>

struct hfm_ident {
	char *name;                      /* the local user name */
	char *fullname;                  /* for whoami; may be NULL */
	char **groups;                   /* the user's groups */
	size_t ngroups;
	char *token_id;                  /* which of the user's tokens ("tk_…"), for whoami */
	char *token_created;             /* its creation date as the file has it, or NULL */
};

/* Frees what the identity owns and zeroes it; NULL and a zeroed one are fine. */
void hfm_ident_dispose(struct hfm_ident *who);

/* 1 if `who` (may be NULL: anonymous) is in group `g`. */
int hfm_ident_in_group(const struct hfm_ident *who, const char *g);

#endif
