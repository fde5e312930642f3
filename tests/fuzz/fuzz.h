/*
 * fuzz.h - what every target in tests/fuzz shares.
 *
 * A target is one libFuzzer entry point, LLVMFuzzerTestOneInput(), that
 * feeds its bytes to one parser and checks what the parser's header
 * promises about the result.  The same file builds two ways:
 *   - with -Dfuzz=true (clang), linked with libFuzzer: scripts/fuzz runs it;
 *   - in every other build, linked with driver.c: a meson test that runs
 *     each input of tests/fuzz/corpus/<target>/ once, so the seeds and every
 *     crash ever found are replayed by each build, with or without clang.
 * A broken promise aborts (FUZZ_CHECK), which both ways count as a crash.
 */
#ifndef HFM_FUZZ_H
#define HFM_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "%s:%d: broken promise: %s\n", __FILE__, __LINE__, #cond); \
		abort(); \
	} \
} while (0)

/* The input as a C string (cut at its first NUL, as a C caller would see it). */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		abort();
	if (size)
		memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/*
 * For readers of files: every line of `s` is "FILE:N: ..." with FILE the
 * file's `path` and N a line number, and ends in '\n'.  0 for "".
 */
static inline int fuzz_lines_name_file(const char *path, const char *s)
{
	size_t pl = strlen(path);

	if (!*s)
		return 0;
	while (*s) {
		const char *nl = strchr(s, '\n'), *p;

		if (!nl || strncmp(s, path, pl) || s[pl] != ':')
			return 0;
		p = s + pl + 1;
		if (*p < '0' || *p > '9')
			return 0;
		while (*p >= '0' && *p <= '9')
			p++;
		if (*p != ':')
			return 0;
		s = nl + 1;
	}
	return 1;
}

#endif
