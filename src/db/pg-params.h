/*
 * A query's parameters as text or binary (issue 14): what the PostgreSQL
 * files of src/db fill before a pg_batch call.  Internal to src/db.
 */
#ifndef KILN_PG_PARAMS_H
#define KILN_PG_PARAMS_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/buf.h"
#include "common/str.h"

#define PGW_MAX 20

/* A write's parameters as text (NULL: SQL NULL). */
struct pgw {
	const char *v[PGW_MAX];
	char num[PGW_MAX][32];
	struct buf fixed[PGW_MAX];      /* a text param made valid UTF-8 */
	int len[PGW_MAX], fmt[PGW_MAX]; /* fmt 1: binary (pgw_blob) */
	int n;
};

static inline void pgw_i64(struct pgw *w, int64_t x)
{
	snprintf(w->num[w->n], sizeof(w->num[0]), "%" PRId64, x);
	w->v[w->n] = w->num[w->n];
	w->n++;
}

static inline void pgw_f64(struct pgw *w, double x)
{
	snprintf(w->num[w->n], sizeof(w->num[0]), "%.17g", x);
	w->v[w->n] = w->num[w->n];
	w->n++;
}

/* s borrowed until db_pg_write returns; NULL is SQL NULL.  PostgreSQL
 * refuses text that is not UTF-8 (and with it the whole transaction): each
 * byte that starts no valid sequence is stored as U+FFFD, as the API shows
 * such text read from SQLite. */
static inline void pgw_text(struct pgw *w, const char *s)
{
	bool partial;
	size_t n = s ? strlen(s) : 0;
	if (s && str_utf8_prefix(s, n, &partial) != n) {
		struct buf *b = &w->fixed[w->n];
		buf_init(b, 3 * n + 1);
		if (str_utf8_sanitize(b, s, n) == 0 && buf_addch(b, '\0') == 0)
			s = b->ptr;
		else
			s = "";
	}
	w->v[w->n++] = s;
}

/* p[0..n) as a binary parameter (a bytea), borrowed until the query is sent. */
static inline void pgw_blob(struct pgw *w, const void *p, size_t n)
{
	w->v[w->n] = n ? p : "";
	w->len[w->n] = (int)n;
	w->fmt[w->n] = 1;
	w->n++;
}

/* Releases what pgw_text made (call once the query is queued). */
static inline void pgw_release(struct pgw *w)
{
	for (int i = 0; i < w->n; i++)
		buf_release(&w->fixed[i]);
}

#endif
