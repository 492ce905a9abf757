/*
 * The change parsers' unit tests (test-pollers.c, test-mailparse.c): a
 * corpus file (KILN_CORPUS_DIR, tests/fuzz/corpus, set by meson) and a
 * change's files.  Header-only like config-test.h: tap.h keeps its counters
 * per translation unit.
 */
#ifndef KILN_TEST_CHANGE_TEST_H
#define KILN_TEST_CHANGE_TEST_H

#include "tap.h"
#include "common/xalloc.h"
#include "master/changes/change.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* The corpus file name ("poller-bzr/01-brz-log-long"), owned, at most
 * 1 MiB - 1 read; NULL (the test failed) if missing. */
static inline char *change_test_fixture(const char *name, size_t *ret_len)
{
	_cleanup_free_ char *path = xasprintf("%s/%s", KILN_CORPUS_DIR, name);
	FILE *f = fopen(path, "rb");
	if (!f) {
		TAP_FAIL("cannot open '%s'", path);
		return NULL;
	}
	char *s = xmalloc(1 << 20);
	size_t n = fread(s, 1, (1 << 20) - 1, f);
	fclose(f);
	s[n] = '\0';
	*ret_len = n;
	return s;
}

/* Does c list the file path? */
static inline bool change_test_has_file(const struct change *c, const char *path)
{
	for (size_t i = 0; i < c->nfiles; i++)
		if (!strcmp(c->files[i], path))
			return true;
	return false;
}

#endif
