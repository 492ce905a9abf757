/*
 * libFuzzer target for the log viewer's search (slice "uilog"): the
 * arguments of GET /api/v2/logs/ID/search (api_log_search_parse) and
 * db_log_search() over a log made of the input, checked against a naive
 * line-by-line search, with and without the scan cap (following
 * continue_from to the end).  Input: a flags byte (1 icase, 2 backward,
 * 4 an 's' log, 8 a 1-byte scan cap), a from byte, the needle up to the
 * first NUL, then the log's text.  The same input, cut at its NULs, is
 * also parsed as q, from, dir and icase.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "db/db.h"
#include "master/api-logs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct db *fz_db;
static int64_t fz_stepid;
static unsigned fz_seq;

static void fz_setup(void)
{
	int64_t masterid, builderid, workerid, bsid, brid, buildid, number, stepnum;
	struct db_sourcestamp ss = {.branch = "main", .revision = "abc", .codebase = ""};
	struct db_buildset_new bs = {
		.reason = "fuzz", .sourcestamps = &ss, .nsourcestamps = 1, .submitted_at = 1};
	if (db_open(NULL, "sqlite::memory:", NULL, &fz_db) < 0 ||
	    db_master_register(fz_db, "fuzz:/", &masterid) < 0 ||
	    db_builder_ensure(fz_db, "b", NULL, NULL, &builderid) < 0 ||
	    db_worker_ensure(fz_db, "w", &workerid) < 0 ||
	    db_buildset_add(fz_db, &bs, &builderid, 1, &bsid, &brid) < 0 ||
	    db_request_claim(fz_db, brid, masterid, 2) < 0 ||
	    db_build_add(fz_db, builderid, brid, workerid, masterid, 3, &buildid, &number) < 0 ||
	    db_step_add(fz_db, buildid, "s", &fz_stepid, &stepnum) < 0)
		abort();
}

static unsigned char fz_fold(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

static bool fz_line_has(const char *l, size_t n, const char *q, size_t qn, bool icase)
{
	for (size_t i = 0; i + qn <= n; i++) {
		size_t j = 0;
		while (j < qn &&
		       (icase ? fz_fold((unsigned char)l[i + j]) == fz_fold((unsigned char)q[j])
			      : l[i + j] == q[j]))
			j++;
		if (j == qn)
			return true;
	}
	return false;
}

/* The answer by brute force over the text as stored (a last line without
 * '\n' gets one; an 's' line's first byte is its stream character). */
static int64_t fz_naive(const char *t, size_t n, const char *q, size_t qn, bool icase,
			bool backward, bool strip, int64_t from)
{
	int64_t line = 0, found = -1;
	const char *p = t, *end = t + n;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl ? nl : end;
		const char *s = strip && p < e ? p + 1 : p;
		bool in = backward ? line <= from : line >= from;
		if (in && fz_line_has(s, (size_t)(e - s), q, qn, icase)) {
			if (!backward)
				return line;
			found = line;
		}
		line++;
		p = nl ? nl + 1 : end;
	}
	return found;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* the arguments: the input cut at its NULs */
	char args[4][64] = {{0}};
	const char *argv[4] = {NULL};
	size_t a = 0, k = 0;
	for (size_t i = 0; i < size && a < 4; i++) {
		if (data[i] == 0 || k == sizeof(args[0]) - 1) {
			argv[a] = args[a];
			a++;
			k = 0;
		} else {
			args[a][k++] = (char)data[i];
		}
	}
	struct api_log_search_args sa;
	const char *err = NULL;
	if (api_log_search_parse(argv[0], argv[1], argv[2], argv[3], &sa, &err) < 0 && !err)
		abort();

	if (size < 3)
		return 0;
	if (!fz_db)
		fz_setup();
	unsigned flags = data[0];
	int64_t from = data[1];
	const char *q = (const char *)data + 2;
	const char *nul = memchr(q, 0, size - 2);
	size_t qn = nul ? (size_t)(nul - q) : size - 2;
	const char *text = nul ? nul + 1 : (const char *)data + size;
	size_t tn = (size_t)((const char *)data + size - text);
	bool strip = flags & 4;

	char name[32];
	snprintf(name, sizeof(name), "l%u", ++fz_seq);
	int64_t logid;
	if (db_log_add(fz_db, fz_stepid, name, strip ? 's' : 't', &logid) < 0)
		abort();
	if (tn && db_log_append(fz_db, logid, text, tn) < 0)
		abort();

	unsigned sf =
		(flags & 1 ? DB_LOG_SEARCH_ICASE : 0) | (flags & 2 ? DB_LOG_SEARCH_BACKWARD : 0);
	uint64_t cap = flags & 8 ? 1 : UINT64_MAX;
	int64_t line = -1, next = from;
	for (int steps = 0; next >= 0; steps++) {
		int r = db_log_search(fz_db, logid, q, qn, sf, next, cap, &line, &next);
		if (r < 0) {
			if (r == -EINVAL && (qn == 0 || memchr(q, '\n', qn)))
				return 0;
			abort();
		}
		if (steps > 100000)
			abort(); /* continue_from must move on */
	}
	/* what was stored: the text with a final newline */
	char *stored = malloc(tn + 1);
	if (!stored)
		abort();
	memcpy(stored, text, tn);
	size_t sn = tn;
	if (tn && text[tn - 1] != '\n')
		stored[sn++] = '\n';
	int64_t want = fz_naive(stored, sn, q, qn, flags & 1, flags & 2, strip, from);
	free(stored);
	if (line != want) {
		fprintf(stderr, "db_log_search gave %lld, a naive search %lld\n", (long long)line,
			(long long)want);
		abort();
	}
	return 0;
}
