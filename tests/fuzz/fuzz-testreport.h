/*
 * The body of the three test-report fuzz targets (fuzz-tap.c, fuzz-junit.c,
 * fuzz-gotest.c): each defines FUZZ_TESTREPORT_FORMAT and includes this.
 * Any bytes as a report, fed whole and again in two pieces cut where the
 * first byte says.  Both parses agree; a failure always says why; every
 * record has a name and a result the step knows; the counts add up.
 */
#ifndef FUZZ_TESTREPORT_FORMAT
#error "define FUZZ_TESTREPORT_FORMAT before including fuzz-testreport.h"
#endif
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "master/testreport.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fuzz_record(void *ud, const struct testreport_record *rec)
{
	int64_t *n = ud;
	if (!rec->name || !*rec->name || !rec->message)
		abort();
	if (rec->result != RESULTS_SUCCESS && rec->result != RESULTS_FAILURE &&
	    rec->result != RESULTS_SKIPPED)
		abort();
	(*n)++;
	return 0;
}

static int fuzz_parse(const uint8_t *data, size_t size, size_t cut, int64_t *ret_n)
{
	struct testreport *tr = testreport_new(FUZZ_TESTREPORT_FORMAT, fuzz_record, ret_n);
	int r = testreport_feed(tr, data, cut);
	if (r >= 0)
		r = testreport_feed(tr, data + cut, size - cut);
	const char *err = NULL;
	if (r >= 0)
		r = testreport_finish(tr, &err);
	else
		err = testreport_errmsg(tr);
	if (r < 0 && (!err || !*err))
		abort(); /* every failure says why */
	const struct testreport_summary *s = testreport_summary(tr);
	if (s->total != *ret_n || s->passed + s->failed + s->skipped != s->total)
		abort();
	testreport_free(tr);
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int64_t n1 = 0, n2 = 0;
	int r1 = fuzz_parse(data, size, size, &n1);
	int r2 = fuzz_parse(data, size, size ? data[0] % (size + 1) : 0, &n2);
	if (r1 != r2 || (r1 >= 0 && n1 != n2))
		abort(); /* where the bytes were cut must not matter */
	return 0;
}
