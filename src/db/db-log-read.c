/*
 * Reading and searching a log's chunks, whichever backend read the rows
 * (issue 14): db-sqlite-log.c steps SQLite's rows through these, db-pg-log.c
 * PostgreSQL's, so a line range or a search answers the same on both.  The
 * lines of an open log's tail chunk are the in-memory tail's (its row, if
 * any, is only as fresh as the last commit).
 */
#include "db/db-internal.h"

#include <errno.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"

size_t db_log_count_lines(const char *p, size_t n)
{
	size_t c = 0;
	const char *end = p + n;
	while (p < end && (p = memchr(p, '\n', (size_t)(end - p)))) {
		c++;
		p++;
	}
	return c;
}

static int db_log_decompress(struct db *db, const void *src, size_t n, const char **ret,
			     size_t *ret_len)
{
	unsigned long long size = ZSTD_getFrameContentSize(src, n);
	if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN ||
	    size > KILN_MAX_LOG_BYTES)
		return db_failf(db, KILN_EDB, "log chunk is not a valid zstd frame");
	if (!db->zd && !(db->zd = ZSTD_createDCtx()))
		return db_failf(db, -ENOMEM, "cannot make a zstd context");
	buf_reset(&db->zbuf);
	int r = buf_grow(&db->zbuf, (size_t)size);
	if (r < 0)
		return db_failf(db, r, "log chunk too large");
	size_t got = ZSTD_decompressDCtx(db->zd, db->zbuf.ptr, (size_t)size, src, n);
	if (ZSTD_isError(got))
		return db_failf(db, KILN_EDB, "decompress log chunk: %s", ZSTD_getErrorName(got));
	*ret = db->zbuf.ptr;
	*ret_len = got;
	return 0;
}

/* A row's text: the blob itself, or its decompressed bytes (in db->zbuf). */
static int db_log_row_text(struct db *db, const struct db_log_chunk *c, const char **ret,
			   size_t *ret_len)
{
	if (c->compressed)
		return db_log_decompress(db, c->blob, c->n, ret, ret_len);
	*ret = c->blob;
	*ret_len = c->n;
	return 0;
}

/* The tail now, if it still starts where the read or search began: else a
 * chunk closed meanwhile (an asynchronous read): -EAGAIN, read again. */
static int db_log_tail_now(struct db *db, int64_t logid, bool had_tail, int64_t table_to,
			   struct db_log_tail **ret)
{
	struct db_log_tail *t = db_log_tail_find(db, logid);
	if (had_tail != (t != NULL) || (t && t->first_line != table_to))
		return -EAGAIN;
	*ret = t;
	return 0;
}

/* --- line ranges ------------------------------------------------------------------- */

/* Appends lines [from, to) of a chunk whose first line is cf, adding their
 * number to *count.  Returns 0, or -E2BIG after adding the whole lines that
 * fit in out. */
static int db_log_chunk_emit(const char *p, size_t n, int64_t cf, int64_t from, int64_t to,
			     struct buf *out, int64_t *count)
{
	if (!p || n == 0)
		return 0;
	const char *end = p + n;
	for (int64_t i = cf; i < from && p < end; i++) {
		const char *q = memchr(p, '\n', (size_t)(end - p));
		p = q ? q + 1 : end;
	}
	const char *start = p;
	int64_t lines = 0;
	for (int64_t i = from > cf ? from : cf; i < to && p < end; i++, lines++) {
		const char *q = memchr(p, '\n', (size_t)(end - p));
		p = q ? q + 1 : end;
	}
	size_t len = (size_t)(p - start);
	size_t room = buf_room(out);
	if (len <= room) {
		int r = buf_add(out, start, len);
		if (r < 0)
			return r;
		*count += lines;
		return 0;
	}
	/* keep the whole lines that fit, then say the page is full */
	const char *q = room && start < end ? memrchr(start, '\n', room) : NULL;
	if (q) {
		size_t fit = (size_t)(q + 1 - start);
		int r = buf_add(out, start, fit);
		if (r < 0)
			return r;
		*count += (int64_t)db_log_count_lines(start, fit);
	}
	return -E2BIG;
}

int db_log_read_init(struct db *db, struct db_log_read *rd, int64_t logid, int64_t first_line,
		     int64_t max_lines, struct buf *out)
{
	if (first_line < 0 || max_lines < 0)
		return db_failf(db, -EINVAL, "negative line range");
	int64_t to = max_lines > INT64_MAX - first_line ? INT64_MAX : first_line + max_lines;
	struct db_log_tail *t = db_log_tail_find(db, logid);
	*rd = (struct db_log_read){
		.logid = logid,
		.first = first_line,
		.to = to,
		.table_to = t && t->first_line < to ? t->first_line : to,
		.had_tail = t != NULL,
		.tail_first = t ? t->first_line : 0,
		.out = out,
	};
	return 0;
}

int db_log_read_row(struct db *db, struct db_log_read *rd, const struct db_log_chunk *c)
{
	if (c->last_line < rd->first)
		return 0;
	const char *text;
	size_t n;
	int r = db_log_row_text(db, c, &text, &n);
	if (r < 0)
		return r;
	r = db_log_chunk_emit(text, n, c->first_line, rd->first, rd->table_to, rd->out, &rd->count);
	return r < 0 ? db_failf(db, r, "log read: output over its cap") : 0;
}

int db_log_read_tail(struct db *db, struct db_log_read *rd)
{
	struct db_log_tail *t;
	if (db_log_tail_now(db, rd->logid, rd->had_tail, rd->tail_first, &t) < 0)
		return -EAGAIN;
	if (t && rd->to > t->first_line && rd->first < t->num_lines) {
		int r = db_log_chunk_emit(t->text.ptr, t->text.len, t->first_line, rd->first,
					  rd->to, rd->out, &rd->count);
		if (r < 0)
			return db_failf(db, r, "log read: output over its cap");
	}
	return 0;
}

/* --- searching (slice "uilog") ------------------------------------------------------- */

static inline unsigned char db_log_fold(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* memmem, ASCII letters folded when icase. */
static const char *db_log_find(const char *h, size_t hn, const char *n, size_t nn, bool icase)
{
	if (nn == 0 || hn < nn)
		return NULL;
	if (!icase)
		return memmem(h, hn, n, nn);
	const unsigned char *hp = (const unsigned char *)h, *np = (const unsigned char *)n;
	unsigned char f0 = db_log_fold(np[0]);
	for (size_t i = 0; i + nn <= hn; i++) {
		if (db_log_fold(hp[i]) != f0)
			continue;
		size_t j = 1;
		while (j < nn && db_log_fold(hp[i + j]) == db_log_fold(np[j]))
			j++;
		if (j == nn)
			return h + i;
	}
	return NULL;
}

/* The first match in [s, e) that does not begin on a line's stream
 * character ('s' logs), or NULL.  base is the chunk's first byte (s >= base). */
static const char *db_log_search_first(const struct db_log_search *q, const char *base,
				       const char *s, const char *e)
{
	const char *p = s;
	while (p < e) {
		const char *m = db_log_find(p, (size_t)(e - p), q->needle, q->nlen, q->icase);
		if (!m)
			return NULL;
		if (!q->strip || (m != base && m[-1] != '\n'))
			return m;
		p = m + 1;
	}
	return NULL;
}

/* Searches the lines of one chunk (first line cf, text [p, p+n)) that are
 * in range (forward: from on; backward: up to from).  Returns the match's
 * line number, or -1. */
static int64_t db_log_search_chunk(struct db_log_search *q, const char *p, size_t n, int64_t cf)
{
	const char *end = p + n, *s = p, *e = end;
	int64_t first = cf;
	if (!p || n == 0)
		return -1;
	if (!q->backward) {
		for (; first < q->from && s < end; first++) {
			const char *nl = memchr(s, '\n', (size_t)(end - s));
			s = nl ? nl + 1 : end;
		}
	} else {
		e = p;
		for (int64_t i = cf; i <= q->from && e < end; i++) {
			const char *nl = memchr(e, '\n', (size_t)(end - e));
			e = nl ? nl + 1 : end;
		}
	}
	if (s >= e)
		return -1;
	q->scanned += (uint64_t)(e - s);
	const char *m = db_log_search_first(q, p, s, e);
	if (m && q->backward) {
		/* the last match: the lines are few (a chunk), matches cheap */
		const char *last = m;
		while ((m = db_log_search_first(q, p, last + 1, e)))
			last = m;
		m = last;
	}
	if (!m)
		return -1;
	int64_t line = first;
	for (const char *c = s; c < m && (c = memchr(c, '\n', (size_t)(m - c))); c++)
		line++;
	return line;
}

int db_log_search_init(struct db *db, struct db_log_search *q, int64_t logid, char type,
		       const char *needle, size_t nlen, unsigned flags, int64_t from,
		       uint64_t max_scan)
{
	if (!needle || nlen == 0 || memchr(needle, '\n', nlen))
		return db_failf(db, -EINVAL, "search text is empty or has a newline");
	if (from < 0)
		return db_failf(db, -EINVAL, "negative line");
	struct db_log_tail *t = db_log_tail_find(db, logid);
	*q = (struct db_log_search){
		.logid = logid,
		.needle = needle,
		.nlen = nlen,
		.icase = (flags & DB_LOG_SEARCH_ICASE) != 0,
		.backward = (flags & DB_LOG_SEARCH_BACKWARD) != 0,
		.strip = type == 's',
		.from = from,
		.max_scan = max_scan,
		.table_to = t ? t->first_line : INT64_MAX,
		.had_tail = t != NULL,
		.line = -1,
		.next = -1,
	};
	return 0;
}

int db_log_search_head(struct db *db, struct db_log_search *q)
{
	struct db_log_tail *t;
	if (db_log_tail_now(db, q->logid, q->had_tail, q->table_to, &t) < 0)
		return -EAGAIN;
	if (q->backward && t && q->from >= t->first_line) {
		q->line = db_log_search_chunk(q, t->text.ptr, t->text.len, t->first_line);
		if (q->line >= 0)
			return 1;
	}
	return 0;
}

int db_log_search_row(struct db *db, struct db_log_search *q, const struct db_log_chunk *c)
{
	if (!q->backward && c->last_line < q->from)
		return 0;
	if (q->scanned >= q->max_scan) {
		/* the cap: the caller goes on from here */
		q->next = q->backward ? (c->last_line < q->from ? c->last_line : q->from)
			  : c->first_line > q->from ? c->first_line
						    : q->from;
		return 1;
	}
	const char *text;
	size_t n;
	int r = db_log_row_text(db, c, &text, &n);
	if (r < 0)
		return r;
	q->line = db_log_search_chunk(q, text, n, c->first_line);
	return q->line >= 0;
}

int db_log_search_tail(struct db *db, struct db_log_search *q)
{
	struct db_log_tail *t;
	if (db_log_tail_now(db, q->logid, q->had_tail, q->table_to, &t) < 0)
		return -EAGAIN;
	if (!q->backward && t && q->from < t->num_lines) {
		if (q->scanned >= q->max_scan && t->text.len) {
			q->next = q->from > t->first_line ? q->from : t->first_line;
			return 0;
		}
		q->line = db_log_search_chunk(q, t->text.ptr, t->text.len, t->first_line);
	}
	return 0;
}
