/*
 * The sync manifest (sync.h): examples/sync.toml reads, defaults are
 * filled in, every kind of mistake is "FILE:LINE: key: why", and the
 * include/exclude patterns select files as huggingface_hub's
 * allow_patterns/ignore_patterns do.
 *
 * argv[1] is examples/sync.toml.  Other files are written into a temporary
 * directory that is the working directory, so messages name "m.toml".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hfm/sync.h"
#include "tap.h"

static void write_file(const char *name, const char *text)
{
	FILE *f = fopen(name, "w");

	if (!f) {
		perror(name);
		exit(2);
	}
	fputs(text, f);
	fclose(f);
}

static struct hfm_sync_manifest *reads(const char *text, const char *what)
{
	struct hfm_buf err = HFM_BUF_INIT(1 << 16);
	struct hfm_sync_manifest *m = NULL;

	write_file("m.toml", text);
	TAP_IS_INT(hfm_sync_manifest_read(&m, "m.toml", &err), 0, "%s: reads", what);
	TAP_IS_STR(hfm_buf_cstr(&err), "", "%s: no message", what);
	hfm_buf_dispose(&err);
	return m;
}

static void refused(const char *text, const char *want, const char *what)
{
	struct hfm_buf err = HFM_BUF_INIT(1 << 16);
	struct hfm_sync_manifest *m = NULL;

	write_file("m.toml", text);
	TAP_IS_INT(hfm_sync_manifest_read(&m, "m.toml", &err), HFM_EINVAL, "%s: refused", what);
	TAP_IS_STR(hfm_buf_cstr(&err), want, "%s: message", what);
	TAP_OK(m == NULL, "%s: no manifest", what);
	hfm_buf_dispose(&err);
}

static void test_example(const char *path)
{
	struct hfm_buf err = HFM_BUF_INIT(1 << 16);
	struct hfm_sync_manifest *m = NULL;

	TAP_IS_INT(hfm_sync_manifest_read(&m, path, &err), 0, "examples/sync.toml reads");
	TAP_IS_STR(hfm_buf_cstr(&err), "", "examples/sync.toml: no message");
	if (!m)
		return;
	TAP_IS_INT(m->n, 3, "three repos");
	TAP_IS_STR(m->repos[0].id.name, "acme/tiny", "a model's id");
	TAP_IS_INT(m->repos[0].n_revisions, 2, "its two revisions");
	TAP_IS_STR(m->repos[0].revisions[1], "v1.0", "in order");
	TAP_IS_INT(m->repos[0].n_include, 3, "its includes");
	TAP_IS_INT(m->repos[0].n_exclude, 1, "its excludes");
	TAP_IS_INT(m->repos[1].id.type, HFM_DATASET, "a dataset");
	TAP_IS_INT(m->repos[1].n_revisions, 1, "no revisions given: one");
	TAP_IS_STR(m->repos[1].revisions[0], "main", "main");
	TAP_IS_STR(m->repos[2].id.name, "gpt2", "a canonical repo");
	TAP_IS_INT(m->repos[2].id.type, HFM_MODEL, "a model by default");
	TAP_IS_INT(m->repos[2].line, 21, "where each [[repo]] is");
	hfm_sync_manifest_free(m);
	hfm_buf_dispose(&err);
}

static void test_defaults(void)
{
	struct hfm_sync_manifest *m = reads("[[repo]]\nid = \"a/b\"\nrevisions = \"refs/pr/1\"\n"
					    "include = \"*.json\"\n", "one string for a list");
	if (m) {
		TAP_IS_INT(m->repos[0].n_revisions, 1, "a string is a list of one");
		TAP_IS_STR(m->repos[0].revisions[0], "refs/pr/1", "refs/pr/N is a revision");
		TAP_IS_STR(m->repos[0].include[0], "*.json", "a pattern string");
		TAP_IS_INT(m->repos[0].git, 0, "no git history unless asked");
	}
	hfm_sync_manifest_free(m);
	m = reads("[[repo]]\nid = \"a/b\"\ngit = true\n", "git = true");
	if (m)
		TAP_IS_INT(m->repos[0].git, 1, "git = true: its history too");
	hfm_sync_manifest_free(m);
}

static void test_errors(void)
{
	refused("", "m.toml:1: repo: no [[repo]] table: nothing to sync\n", "empty");
	refused("[repo]\nid = \"a/b\"\n", "m.toml:1: repo: expected [[repo]] tables, got a table\n",
		"[repo] instead of [[repo]]");
	refused("[[repos]]\nid = \"a/b\"\n",
		"m.toml:1: repos: unknown key (did you mean repo? each repo is one [[repo]] table)\n",
		"[[repos]]");
	refused("[[repo]]\nrevisions = [\"main\"]\n",
		"m.toml:1: repo[0]: a repo needs an id (\"org/name\" or \"name\")\n", "no id");
	refused("[[repo]]\nid = \"a/b/c\"\n",
		"m.toml:2: repo[0].id: \"a/b/c\" is not a repo id (\"org/name\" or \"name\": "
		"letters, digits, '-', '_' and '.')\n", "three segments");
	refused("[[repo]]\nid = \"datasets/a/b\"\n",
		"m.toml:2: repo[0].id: \"datasets/a/b\" is not a repo id: give the type as "
		"type = \"dataset\"\n", "a type prefix in the id");
	refused("[[repo]]\nid = \"a/b\"\ntype = \"models\"\n",
		"m.toml:3: repo[0].type: \"models\" is not one of model, dataset, space\n", "bad type");
	refused("[[repo]]\nid = \"a/b\"\nrevisions = []\n",
		"m.toml:3: repo[0].revisions: needs at least one revision (or leave it out for "
		"\"main\")\n", "no revisions");
	refused("[[repo]]\nid = \"a/b\"\nrevisions = [\"../x\"]\n",
		"m.toml:3: repo[0].revisions[0]: revision \"../x\" is not a revision (a branch, tag, "
		"refs/pr/N or commit id)\n", "a bad revision");
	refused("[[repo]]\nid = \"a/b\"\nexclude = [\"\"]\n",
		"m.toml:3: repo[0].exclude[0]: pattern \"\" must not be empty\n", "an empty pattern");
	{
		struct hfm_buf err = HFM_BUF_INIT(4096);
		struct hfm_sync_manifest *m = NULL;
		write_file("m.toml", "[[repo]]\nid = \"a/b\"\ninclude = [\n");
		TAP_IS_INT(hfm_sync_manifest_read(&m, "m.toml", &err), HFM_EINVAL, "bad TOML: refused");
		TAP_OK(!strncmp(hfm_buf_cstr(&err), "m.toml:", 7) && strstr(hfm_buf_cstr(&err), "(column "),
		       "bad TOML: FILE:LINE: toml++'s words (column N)");
		hfm_buf_dispose(&err);
	}
	refused("[[repo]]\nid = \"a/b\"\nrevision = \"main\"\n",
		"m.toml:3: repo[0].revision: unknown key (did you mean revisions? it takes a list)\n",
		"revision for revisions");
	refused("[[repo]]\nid = \"a/b\"\ngit = \"yes\"\n",
		"m.toml:3: repo[0].git: expected a boolean, got a string\n", "git takes a boolean");
	refused("[[repo]]\nid = \"a/b\"\nInclude = [\"x\"]\n",
		"m.toml:3: repo[0].Include: unknown key (did you mean include?)\n", "a key's case");
	refused("[[repo]]\nid = \"a/b\"\n[[repo]]\nid = \"c\"\n[[repo]]\nid = \"a/b\"\n",
		"m.toml:5: repo[2].id: a/b is listed twice (first at line 1): list its revisions in "
		"one [[repo]]\n", "a repo twice");
	/* the same name as a dataset is another repo */
	hfm_sync_manifest_free(reads("[[repo]]\nid = \"a/b\"\n[[repo]]\nid = \"a/b\"\ntype = "
				     "\"dataset\"\n", "a model and a dataset of one name"));
	refused("[[repo]]\nid = 3\n[[repo]]\nid = \"x\"\ntype = \"space\"\nexclude = 1\n",
		"m.toml:2: repo[0].id: expected a string, got an integer\n"
		"m.toml:6: repo[1].exclude: expected an array of strings, got an integer\n",
		"every problem, in file order");
}

static void want_is(const struct hfm_sync_want *w, const char *path, int want)
{
	TAP_IS_INT(hfm_sync_wants(w, path), want, "%s %s", path, want ? "wanted" : "not wanted");
}

static void test_wants(void)
{
	char *inc[] = { "*.json", "tokenizer*", "data/" };
	char *exc[] = { "original/*", "*.bin" };
	struct hfm_sync_want all = { 0 }, some = {
		.include = inc, .n_include = 3, .exclude = exc, .n_exclude = 2,
	}, none_but = { .exclude = exc, .n_exclude = 2 };

	want_is(&all, "anything/at/all.txt", 1);
	want_is(&some, "config.json", 1);
	want_is(&some, "sub/dir/config.json", 1);           /* "*" crosses "/" */
	want_is(&some, "tokenizer.model", 1);
	want_is(&some, "data/train/part-0.parquet", 1);     /* "data/" is the folder */
	want_is(&some, "model.safetensors", 0);
	want_is(&some, "original/params.json", 0);          /* excluded though included */
	want_is(&some, "data/x.bin", 0);
	want_is(&none_but, "README.md", 1);
	want_is(&none_but, "weights.bin", 0);
}

int main(int argc, char **argv)
{
	char dir[] = "/tmp/hfm-manifest-XXXXXX";
	char example[4096];

	if (argc < 2 || !realpath(argv[1], example) || !mkdtemp(dir) || chdir(dir) < 0) {
		printf("Bail out! usage: test_sync_manifest examples/sync.toml\n");
		return 1;
	}
	test_example(example);
	test_defaults();
	test_errors();
	test_wants();
	unlink("m.toml");
	if (chdir("/") == 0)
		rmdir(dir);
	return tap_done();
}
