/*
 * libFuzzer target for the CVS poller's parser and grouping
 * (poller_cvs_parse_rlog, poller_cvs_group, src/master/changes/poller-cvs.c):
 * any bytes as `cvs rlog -N -S` output, whose log messages and file names
 * an author chose.  Every revision read has a path, a revision, an author
 * and a log; grouping makes at most one change per revision, each naming
 * at least one file, oldest first.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "master/changes/change.h"
#include "master/changes/poller.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct poller_cvs_rev *r = NULL;
	size_t n = 0;
	if (poller_cvs_parse_rlog((const char *)data, size, "/cvs/mod/", "mod", &r, &n) < 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!r[i].path || !r[i].rev || !r[i].author || !r[i].log)
			abort();
	struct change *c = NULL;
	size_t nc = 0;
	if (poller_cvs_group(r, n, &c, &nc) < 0 || nc > n)
		abort();
	for (size_t i = 0; i < nc; i++) {
		if (c[i].nfiles == 0 || !c[i].revision || (i && c[i].when < c[i - 1].when - 1e9))
			abort();
	}
	change_list_free(c, nc);
	poller_cvs_revs_free(r, n);
	return 0;
}
