/*
 * driver.c - run a fuzz target over files, without libFuzzer.
 *
 * usage: fuzz_<target> FILE|DIR...  Each file (each entry of a directory,
 * in name order, dot files skipped) is read into a buffer of exactly its
 * size, so an over-read shows under ASan, and passed to the target once.
 * Prints TAP, one line per input; a crash or a broken promise ends the
 * program, which meson counts as a failure.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int n_run;

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *data = NULL;
	long size;

	if (!f || fseek(f, 0, SEEK_END) || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
		printf("not ok %d - %s: %s\n", ++n_run, path, strerror(errno));
		if (f)
			fclose(f);
		return 1;
	}
	/* malloc(0) may return NULL; the target must not read then anyway */
	data = malloc(size ? (size_t)size : 1);
	if (!data || fread(data, 1, (size_t)size, f) != (size_t)size) {
		printf("not ok %d - %s: cannot read\n", ++n_run, path);
		free(data);
		fclose(f);
		return 1;
	}
	fclose(f);
	fflush(stdout);
	LLVMFuzzerTestOneInput(data, (size_t)size);
	free(data);
	printf("ok %d - %s\n", ++n_run, path);
	return 0;
}

static int skip_dot(const struct dirent *e)
{
	return e->d_name[0] != '.';
}

static int run_dir(const char *dir)
{
	struct dirent **list;
	int n, i, bad = 0;

	n = scandir(dir, &list, skip_dot, alphasort);
	if (n < 0) {
		printf("not ok %d - %s: %s\n", ++n_run, dir, strerror(errno));
		return 1;
	}
	for (i = 0; i < n; i++) {
		char *path = malloc(strlen(dir) + strlen(list[i]->d_name) + 2);

		sprintf(path, "%s/%s", dir, list[i]->d_name);
		bad |= run_file(path);
		free(path);
		free(list[i]);
	}
	free(list);
	return bad;
}

int main(int argc, char **argv)
{
	int i, bad = 0;
	struct stat st;

	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	for (i = 1; i < argc; i++) {
		if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode))
			bad |= run_dir(argv[i]);
		else
			bad |= run_file(argv[i]);
	}
	if (n_run == 0) {
		printf("not ok 1 - no inputs given\n");
		n_run = 1;
		bad = 1;
	}
	printf("1..%d\n", n_run);
	return bad;
}
