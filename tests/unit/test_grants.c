/*
 * test_grants.c - the grants file without the server (grants.h): the record
 * parser, its line, the merge of bundles' records (later wins, a revoke wins
 * a tie), revokes kept as tombstones, hand-edited duplicates.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hfm/grants.h"
#include "tap.h"

static char tmpdir[] = "/tmp/hfm-grants-XXXXXX";

static int parse(struct hfm_grant *g, const char *line, struct hfm_buf *err)
{
	hfm_buf_reset(err);
	return hfm_grants_parse_record(g, line, strlen(line), "g.jsonl", 7, err);
}

static void test_parse(void)
{
	struct hfm_buf err = HFM_BUF_INIT(4096), out = HFM_BUF_INIT(4096);
	struct hfm_grant g;

	TAP_IS_INT(parse(&g, "{\"user\":\"alice\",\"repo\":\"models/meta/llama\",\"via\":\"admin\","
			 "\"time\":\"2026-12-04T16:00:00.000Z\"}", &err), 0, "a grant parses");
	TAP_OK(!strcmp(g.user, "alice") && !strcmp(g.repo, "models/meta/llama") &&
	       !strcmp(g.via, "admin") && !strcmp(g.time, "2026-12-04T16:00:00.000Z") && !g.revoked,
	       "its fields");
	hfm_grants_format_record(&out, &g);
	TAP_IS_STR(hfm_buf_cstr(&out), "{\"user\":\"alice\",\"repo\":\"models/meta/llama\",\"via\":\"admin\","
		   "\"time\":\"2026-12-04T16:00:00.000Z\"}\n", "printed back as it was");
	hfm_grant_dispose(&g);

	TAP_IS_INT(parse(&g, " { \"revoked\" : true , \"repo\":\"data\\u0073ets/a\\/b\", \"user\":"
			 "\"b\\u006fb\"}  ", &err), 0, "blanks, escapes, any order: %s", hfm_buf_cstr(&err));
	TAP_OK(g.revoked && !strcmp(g.user, "bob") && !strcmp(g.repo, "datasets/a/b") &&
	       !strcmp(g.via, "admin") && !g.time[0], "a revoke; via defaults to admin, time unknown");
	hfm_buf_reset(&out);
	hfm_grants_format_record(&out, &g);
	TAP_IS_STR(hfm_buf_cstr(&out), "{\"user\":\"bob\",\"repo\":\"datasets/a/b\",\"via\":\"admin\","
		   "\"revoked\":true}\n", "a tombstone's line");
	hfm_grant_dispose(&g);
	TAP_IS_INT(parse(&g, "{\"user\":\"bob\",\"repo\":\"models/a/b\",\"revoked\":false}", &err), 0,
		   "revoked false");
	TAP_OK(!g.revoked, "is a grant");
	hfm_grant_dispose(&g);

	static const struct { const char *line, *want; } bad[] = {
		{ "", "g.jsonl:7: record: not a JSON object" },
		{ "[1]", "record: not a JSON object" },
		{ "{\"user\":\"a\",\"repo\":\"models/a/b\"", "record: not a JSON object (',' or '}'" },
		{ "{\"user\":\"a\",\"repo\":\"models/a/b\"} x", "record: text after the object" },
		{ "{\"user\":\"a\",\"repo\":\"models/a/b\",\"who\":\"x\"}", "g.jsonl:7: who: unknown key" },
		{ "{\"user\":\"a\",\"user\":\"b\",\"repo\":\"models/a/b\"}", "user: given twice" },
		{ "{\"user\":\"a b\",\"repo\":\"models/a/b\"}", "user: a user name is needed" },
		{ "{\"repo\":\"models/a/b\"}", "user: a user name is needed" },
		{ "{\"user\":\"a\",\"repo\":\"a/b\"}", "repo: \"models/…\"" },
		{ "{\"user\":\"a\",\"repo\":\"models/a/../b\"}", "repo: repo " },
		{ "{\"user\":\"a\",\"repo\":\"models/a/b\",\"via\":\"the admin\"}", "via: a word" },
		{ "{\"user\":\"a\",\"repo\":\"models/a/b\",\"time\":\"yesterday\"}", "time: YYYY-MM-DD" },
		{ "{\"user\":\"a\",\"repo\":\"models/a/b\",\"revoked\":1}", "revoked: true or false" },
		{ "{\"user\":1,\"repo\":\"models/a/b\"}", "user: a string is expected" },
		{ "{\"user\":\"a\\u0000\",\"repo\":\"models/a/b\"}", "user: a NUL in a string" },
		{ "{\"user\":\"a\\ud800\",\"repo\":\"models/a/b\"}", "user: a lone high surrogate" },
		{ "{\"user\":\"a\\x\",\"repo\":\"models/a/b\"}", "user: a bad escape" },
		{ "{\"user\":\"a\tb\",\"repo\":\"models/a/b\"}", "user: a control character" },
		{ "{\"user\":\"a", "user: an unterminated string" },
	};
	for (size_t i = 0; i < HFM_ARRAY_SIZE(bad); i++) {
		TAP_IS_INT(parse(&g, bad[i].line, &err), HFM_EINVAL, "refused: %s", bad[i].line);
		TAP_OK(strstr(hfm_buf_cstr(&err), bad[i].want) != NULL, "  says '%s' (%.*s)", bad[i].want,
		       (int)strcspn(hfm_buf_cstr(&err), "\n"), hfm_buf_cstr(&err));
	}
	/* a surrogate pair decodes (and is no user name) */
	TAP_IS_INT(parse(&g, "{\"user\":\"\\ud83d\\ude00\",\"repo\":\"models/a/b\"}", &err), HFM_EINVAL,
		   "a surrogate pair is read, then refused as a name");
	TAP_OK(strstr(hfm_buf_cstr(&err), "user: a user name is needed") != NULL, "  by the name rule");
	hfm_buf_dispose(&err);
	hfm_buf_dispose(&out);
}

static void write_file(const char *p, const char *s)
{
	FILE *f = fopen(p, "w");

	fputs(s, f);
	fclose(f);
}

static char *slurp(const char *p)
{
	static char buf[65536];
	FILE *f = fopen(p, "r");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

	if (f)
		fclose(f);
	buf[n] = '\0';
	return buf;
}

static void test_merge(void)
{
	char *p = hfm_asprintf("%s/grants.jsonl", tmpdir);
	struct hfm_buf err = HFM_BUF_INIT(4096);
	struct hfm_grant_list in = { 0 }, l;
	struct hfm_grants_merged m;
	struct hfm_repo_id id;
	const char *t1 = "2026-12-01T00:00:00.000Z", *t2 = "2026-12-02T00:00:00.000Z";

	hfm_grant_list_add(&in, "alice", "models/meta/llama", "admin", t1, 0);
	hfm_grant_list_add(&in, "carol", "models/meta/llama", "upstream", t1, 1);
	TAP_IS_INT(hfm_grants_merge(&m, p, &in, &err), 0, "merge into no file");
	TAP_OK(m.granted == 1 && m.revoked == 0 && m.changed == 1 && m.unchanged == 0,
	       "one granted, one tombstone kept");
	struct hfm_grants *g = hfm_grants_new(p, NULL, NULL);
	hfm_grants_parse_repo(&id, "meta/llama");
	TAP_IS_INT(hfm_grants_has(g, "alice", &id), 1, "alice may read");
	TAP_IS_INT(hfm_grants_has(g, "carol", &id), 0, "a tombstone grants nothing");
	char *before = hfm_strdup(slurp(p));
	TAP_IS_INT(hfm_grants_merge(&m, p, &in, &err), 0, "the same records again");
	TAP_OK(m.granted + m.revoked + m.changed == 0 && m.unchanged == 2, "change nothing");
	TAP_IS_STR(slurp(p), before, "the file is as it was");
	free(before);

	/* older records lose; a later one wins; a revoke wins a tie */
	hfm_grant_list_dispose(&in);
	hfm_grant_list_add(&in, "carol", "models/meta/llama", "admin", "", 0);
	hfm_grant_list_add(&in, "alice", "MODELS/Meta/Llama", "admin", t1, 1);
	TAP_IS_INT(hfm_grants_merge(&m, p, &in, &err), 0, "an older grant, a revoke of the same time");
	TAP_OK(m.revoked == 1 && m.unchanged == 1 && m.granted == 0, "the revoke wins the tie, the "
	       "older grant loses");
	TAP_IS_INT(hfm_grants_has(g, "alice", &id), 0, "alice may no longer read");
	TAP_IS_INT(hfm_grants_has(g, "carol", &id), 0, "nor carol");
	hfm_grant_list_dispose(&in);
	hfm_grant_list_add(&in, "carol", "models/meta/llama", "admin", t2, 0);
	TAP_IS_INT(hfm_grants_merge(&m, p, &in, &err), 0, "a later grant");
	TAP_IS_INT(m.granted, 1, "grants");
	TAP_IS_INT(hfm_grants_has(g, "carol", &id), 1, "carol may read");

	/* edits: a revoke is a tombstone that a later grant replaces */
	TAP_IS_INT(hfm_grants_edit(p, "carol", &id, "admin", 0, &err), 0, "revoke carol");
	TAP_OK(strstr(slurp(p), "\"user\":\"carol\",\"repo\":\"models/meta/llama\",\"via\":\"admin\","
		      "\"time\":\"") && strstr(slurp(p), "\"revoked\":true}\n"), "kept as a tombstone");
	TAP_IS_INT(hfm_grants_edit(p, "carol", &id, "admin", 0, &err), HFM_ENOENT, "revoking again");
	TAP_IS_INT(hfm_grants_edit(p, "carol", &id, "admin", 1, &err), 0, "grant her again");
	TAP_IS_INT(hfm_grants_has(g, "carol", &id), 1, "in force");
	struct hfm_buf list = HFM_BUF_INIT(4096);
	TAP_IS_INT(hfm_grants_list(&list, p, &err), 0, "list");
	TAP_OK(!strncmp(hfm_buf_cstr(&list), "carol models/meta/llama admin 2", 31) &&
	       !strchr(hfm_buf_cstr(&list), '\n')[1], "lists carol, not alice's tombstone");
	hfm_buf_dispose(&list);

	/* a hand edit with two records of one user and repo: the later counts */
	write_file(p, "# edited by hand\n"
		   "{\"user\":\"bob\",\"repo\":\"models/meta/llama\",\"time\":\"2026-12-02T00:00:00.000Z\"}\n"
		   "\n{\"user\":\"bob\",\"repo\":\"models/META/llama\",\"time\":\"2026-12-01T00:00:00.000Z\","
		   "\"revoked\":true}\n");
	TAP_IS_INT(hfm_grants_read(&l, p, &err), 0, "a file with a duplicate reads");
	TAP_OK(l.n == 1 && !l.v[0].revoked && !strcmp(l.v[0].time, t2), "as the later record");
	hfm_grant_list_dispose(&l);
	TAP_IS_INT(hfm_grants_has(g, "bob", &id), 1, "bob may read");

	write_file(p, "{\"user\":\"bob\"\n");
	hfm_grant_list_dispose(&in);
	hfm_grant_list_add(&in, "dave", "models/meta/llama", "admin", t1, 0);
	hfm_buf_reset(&err);
	TAP_IS_INT(hfm_grants_merge(&m, p, &in, &err), HFM_EINVAL, "no merge into a file that does not read");
	TAP_OK(strstr(hfm_buf_cstr(&err), "grants.jsonl:1: record: ") != NULL, "  FILE:LINE (%.*s)",
	       (int)strcspn(hfm_buf_cstr(&err), "\n"), hfm_buf_cstr(&err));
	TAP_IS_STR(slurp(p), "{\"user\":\"bob\"\n", "the file is left as it was");
	TAP_IS_INT(hfm_grants_has(g, "bob", &id), 0, "and grants nothing (fail closed)");

	hfm_grants_free(g);
	hfm_grant_list_dispose(&in);
	hfm_buf_dispose(&err);
	unlink(p);
	free(p);
}

int main(void)
{
	if (!mkdtemp(tmpdir))
		return 1;
	test_parse();
	test_merge();
	char *cmd = hfm_asprintf("rm -rf %s", tmpdir);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", tmpdir);
	free(cmd);
	return tap_done();
}
