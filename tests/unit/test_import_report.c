/*
 * What an import says when it is done (report.h): the JSON line of --json,
 * whose shape docs/importer.md documents and scripts rely on, and the text
 * summary on stderr.  Jobs are filled by hand, as the steps would.
 */
#include <cjson/cJSON.h>

#include "import_fixture.h"
#include "report.h"

static const char *const MISSING_OID =
	"4f26aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
static const char *const CORRUPT_OID =
	"0dcdaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

/* The names of an object's members, comma-separated, in order. */
static void keys_of(char *out, size_t n, const cJSON *obj)
{
	const cJSON *it;
	size_t len = 0;

	out[0] = '\0';
	for (it = obj ? obj->child : NULL; it && len < n; it = it->next)
		len += (size_t)snprintf(out + len, n - len, "%s%s", len ? "," : "", it->string);
}

static void add_lfs(struct hfm_imp_job *job, const char *oid, uint64_t size, const char *where,
		    enum hfm_imp_lfs_state state)
{
	struct hfm_imp_lfs *e;

	if (hfm_imp_lfsset_add(&e, &job->lfs, oid, size, where)) {
		printf("# %s\n", hfm_error_last());
		exit(1);
	}
	e->state = state;
}

/* n distinct oids: "<i as 8 hex>" followed by 'b's */
static void nth_oid(char out[HFM_SHA256_HEX + 1], unsigned i)
{
	snprintf(out, HFM_SHA256_HEX + 1, "%08x%056d", i, 0);
}

/* A clone's import with two refs, missing objects and a corrupt file. */
static void fill_clone_job(struct hfm_imp_job *job)
{
	git_oid main_id, pr_id;

	git_oid_fromstr(&main_id, "2d5af3a0aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	git_oid_fromstr(&pr_id, "c5293b31aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	job->mirror_path = hfm_strdup("/srv/store/mirrors/models/acme/tiny.git");
	hfm_imp_job_add_ref(job, "refs/heads/main", &main_id);
	hfm_imp_job_add_ref(job, "refs/pr/1", &pr_id);
	job->git_objects = 21;
	job->refs_new = 2;
	job->linked = 4;
	job->present = 1;
	job->bytes = 9961472;
	add_lfs(job, MISSING_OID, 3145728, "refs/heads/dev:weights.bin", HFM_IMP_LFS_MISSING);
	add_lfs(job, "5555555555555555555555555555555555555555555555555555555555555555", 7,
		"refs/heads/main:a.bin", HFM_IMP_LFS_LINKED);
	add_lfs(job, "6666666666666666666666666666666666666666666666666666666666666666", 8,
		"refs/heads/main:never tried.bin", HFM_IMP_LFS_PENDING);
	hfm_imp_job_add_corrupt(job, CORRUPT_OID, "/data/tiny/odd \"name\"\n.bin",
				"content hashes to 9a1e, expected 0dcd");
}

static void test_json_clone(void)
{
	struct fx_job x;
	struct hfm_buf line = HFM_BUF_INIT((size_t)1 << 20);
	cJSON *j, *m;
	char keys[512];

	fx_job_start(&x, "/data/tiny", "acme/tiny", HFM_IMP_SRC_CLONE, 0);
	fill_clone_job(&x.job);
	hfm_imp_report_json(&line, &x.job, NULL);
	TAP_OK(!strchr(hfm_buf_cstr(&line), '\n'), "one line");
	j = cJSON_Parse(hfm_buf_cstr(&line));
	TAP_OK(cJSON_IsObject(j), "valid JSON: %s", hfm_buf_cstr(&line));
	keys_of(keys, sizeof(keys), j);
	TAP_IS_STR(keys, "source,repo,type,mirror,refs,git_objects,refs_new,refs_moved,"
		   "objects_linked,objects_copied,objects_present,bytes,missing,corrupt,complete",
		   "the documented members, in order");
	TAP_IS_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "source")), "/data/tiny", "source");
	TAP_IS_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "repo")), "acme/tiny", "repo");
	TAP_IS_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "type")), "model", "type");
	TAP_IS_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "mirror")),
		   "/srv/store/mirrors/models/acme/tiny.git", "mirror");
	m = cJSON_GetObjectItem(j, "refs");
	keys_of(keys, sizeof(keys), m);
	TAP_IS_STR(keys, "refs/heads/main,refs/pr/1", "refs: every ref set, by name");
	TAP_IS_STR(cJSON_GetStringValue(cJSON_GetObjectItem(m, "refs/pr/1")),
		   "c5293b31aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "a ref's commit");
	TAP_IS_INT(cJSON_GetObjectItem(j, "git_objects")->valuedouble, 21, "git_objects");
	TAP_IS_INT(cJSON_GetObjectItem(j, "refs_new")->valuedouble, 2, "refs_new");
	TAP_IS_INT(cJSON_GetObjectItem(j, "objects_linked")->valuedouble, 4, "objects_linked");
	TAP_IS_INT(cJSON_GetObjectItem(j, "objects_present")->valuedouble, 1, "objects_present");
	TAP_IS_INT(cJSON_GetObjectItem(j, "bytes")->valuedouble, 9961472, "bytes");

	m = cJSON_GetObjectItem(j, "missing");
	TAP_IS_INT(cJSON_GetArraySize(m), 2, "missing: the missing and the never tried object");
	keys_of(keys, sizeof(keys), cJSON_GetArrayItem(m, 0));
	TAP_IS_STR(keys, "oid,size,path", "a missing object's members");
	TAP_IS_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(m, 0), "oid")),
		   MISSING_OID, "its oid");
	TAP_IS_INT(cJSON_GetObjectItem(cJSON_GetArrayItem(m, 0), "size")->valuedouble, 3145728,
		   "its size");
	TAP_IS_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(m, 0), "path")),
		   "refs/heads/dev:weights.bin", "the ref and path that need it");
	TAP_IS_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(m, 1), "path")),
		   "refs/heads/main:never tried.bin", "the second");

	m = cJSON_GetObjectItem(j, "corrupt");
	TAP_IS_INT(cJSON_GetArraySize(m), 1, "corrupt: one");
	keys_of(keys, sizeof(keys), cJSON_GetArrayItem(m, 0));
	TAP_IS_STR(keys, "oid,path,reason", "a corrupt file's members");
	TAP_IS_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(m, 0), "path")),
		   "/data/tiny/odd \"name\"\n.bin", "a path with quotes and a newline survives");
	TAP_IS_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(m, 0), "reason")),
		   "content hashes to 9a1e, expected 0dcd", "the reason");
	TAP_OK(cJSON_IsFalse(cJSON_GetObjectItem(j, "complete")), "complete: false");
	cJSON_Delete(j);
	hfm_buf_dispose(&line);
	fx_job_end(&x);
}

static void test_json_cache(void)
{
	struct fx_job x;
	struct hfm_buf line = HFM_BUF_INIT((size_t)1 << 20);
	cJSON *j;
	char keys[512];

	fx_job_start(&x, "/c/datasets--acme--ds", "acme/ds", HFM_IMP_SRC_HFCACHE, 0);
	x.job.id.type = HFM_DATASET;
	x.job.mirror_path = hfm_strdup("/s/mirrors/datasets/acme/ds.git");
	add_lfs(&x.job, MISSING_OID, 1, "main:x", HFM_IMP_LFS_PRESENT);
	x.job.present = 1;
	hfm_imp_report_json(&line, &x.job, NULL);
	j = cJSON_Parse(hfm_buf_cstr(&line));
	keys_of(keys, sizeof(keys), j);
	TAP_IS_STR(keys, "source,repo,type,mirror,refs,refs_new,refs_moved,objects_linked,"
		   "objects_copied,objects_present,bytes,missing,corrupt,complete",
		   "a cache folder: no git_objects");
	TAP_IS_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "type")), "dataset", "type");
	TAP_IS_INT(cJSON_GetArraySize(cJSON_GetObjectItem(j, "refs")), 0, "no refs: {}");
	TAP_IS_INT(cJSON_GetArraySize(cJSON_GetObjectItem(j, "missing")), 0, "missing: []");
	TAP_IS_INT(cJSON_GetArraySize(cJSON_GetObjectItem(j, "corrupt")), 0, "corrupt: []");
	TAP_OK(cJSON_IsTrue(cJSON_GetObjectItem(j, "complete")), "complete: true");
	cJSON_Delete(j);
	hfm_buf_dispose(&line);
	fx_job_end(&x);
}

static void test_json_error(void)
{
	struct fx_job x;
	struct hfm_buf line = HFM_BUF_INIT((size_t)1 << 20);
	cJSON *j;
	char keys[512];

	fx_job_start(&x, "/data/tiny", "acme/tiny", HFM_IMP_SRC_CLONE, 0);
	fill_clone_job(&x.job);   /* what a failed run recorded is not reported */
	hfm_imp_report_json(&line, &x.job, "the store cannot be written");
	j = cJSON_Parse(hfm_buf_cstr(&line));
	keys_of(keys, sizeof(keys), j);
	TAP_IS_STR(keys, "source,repo,type,error,complete", "a failed source with a name");
	TAP_IS_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "error")),
		   "the store cannot be written", "the error");
	TAP_OK(cJSON_IsFalse(cJSON_GetObjectItem(j, "complete")), "complete: false");
	cJSON_Delete(j);

	hfm_buf_reset(&line);
	memset(&x.job.id, 0, sizeof(x.job.id));
	hfm_imp_report_json(&line, &x.job, "cannot tell which repo /data/tiny is");
	j = cJSON_Parse(hfm_buf_cstr(&line));
	keys_of(keys, sizeof(keys), j);
	TAP_IS_STR(keys, "source,error,complete", "a source that could not be named: no repo");
	cJSON_Delete(j);
	hfm_buf_dispose(&line);
	fx_job_end(&x);
}

static void test_text(void)
{
	struct fx_job x;
	struct fx_capture out;
	const char *t, *head;
	char oid[HFM_SHA256_HEX + 1], want[256];
	unsigned i;

	fx_capture_open(&out);
	fx_job_start(&x, "/data/tiny", "acme/tiny", HFM_IMP_SRC_CLONE, 0);
	fill_clone_job(&x.job);
	hfm_imp_report_text(out.f, &x.job, 0);
	t = fx_capture_new(&out);
	head = "hfmirror-import: acme/tiny (model) -> /srv/store/mirrors/models/acme/tiny.git\n";
	TAP_OK(!strncmp(t, head, strlen(head)), "the repo and its mirror first");
	TAP_OK(strstr(t, "\n  refs: 2 (2 new, 0 moved); git objects: 21 new\n") != NULL,
	       "refs and, for a clone, git objects");
	TAP_OK(strstr(t, "\n  LFS objects: 4 linked, 0 copied (9.5 MiB), 1 already in the store, "
			 "2 missing\n") != NULL, "the LFS counts");
	TAP_OK(strstr(t, "\n  corrupt files: 1 (not imported)\n    /data/tiny/odd \"name\"\n.bin: "
			 "content hashes to 9a1e, expected 0dcd\n") != NULL, "corrupt files and why");
	TAP_OK(strstr(t, "\n  missing LFS objects (fetch them into the clone (git lfs fetch --all) "
			 "and run again):\n") != NULL, "how to get the missing objects of a clone");
	snprintf(want, sizeof(want), "\n    %s    3.0 MiB  refs/heads/dev:weights.bin\n",
		 MISSING_OID);
	TAP_OK(strstr(t, want) != NULL, "a missing object: oid, size, where it is needed");
	fx_job_end(&x);

	/* a cache folder with more missing objects than the text lists */
	fx_job_start(&x, "/c/models--acme--big", "acme/big", HFM_IMP_SRC_HFCACHE, 0);
	x.job.mirror_path = hfm_strdup("/m");
	for (i = 0; i < 25; i++) {
		nth_oid(oid, i);
		add_lfs(&x.job, oid, 1, "main:f", HFM_IMP_LFS_MISSING);
	}
	hfm_imp_report_text(out.f, &x.job, 0);
	t = fx_capture_new(&out);
	TAP_OK(strstr(t, "; git objects") == NULL, "no git objects for a cache folder");
	TAP_OK(strstr(t, "(download them into the cache and run again)") != NULL,
	       "how to get them into a cache");
	nth_oid(oid, 19);
	TAP_OK(strstr(t, oid) != NULL, "the 20th missing object is listed");
	nth_oid(oid, 20);
	TAP_OK(strstr(t, oid) == NULL, "the 21st is not");
	TAP_OK(strstr(t, "\n    ... and 5 more (--json lists them all)\n") != NULL,
	       "the rest are counted");
	hfm_imp_report_text(out.f, &x.job, 1);
	t = fx_capture_new(&out);
	nth_oid(oid, 24);
	TAP_OK(strstr(t, oid) != NULL && strstr(t, "more (--json") == NULL,
	       "with `all`, every one is listed");
	fx_job_end(&x);

	/* complete: no missing section */
	fx_job_start(&x, "/p", "acme/p", HFM_IMP_SRC_PLAIN, 0);
	x.job.mirror_path = hfm_strdup("/m");
	hfm_imp_report_text(out.f, &x.job, 0);
	t = fx_capture_new(&out);
	TAP_OK(strstr(t, "0 missing\n") != NULL && strstr(t, "missing LFS objects") == NULL &&
	       strstr(t, "corrupt") == NULL, "a complete import: counts only");
	fx_job_end(&x);
	fx_capture_close(&out);
}

int main(void)
{
	fx_init("import-report");
	test_json_clone();
	test_json_cache();
	test_json_error();
	test_text();
	return fx_done();
}
