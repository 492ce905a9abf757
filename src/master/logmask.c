/*
 * Secret masking over a step's output pieces (logmask.h).  Each stream keeps
 * its undecided bytes (a secret may still start among them), and the
 * arrival-ordered tail of all streams is searched too; a byte is final once
 * neither search can still use it, then it is rendered into its stream's
 * line buffer and emitted a line at a time.
 */
#include "master/logmask.h"

#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "common/limits.h"
#include "common/xalloc.h"

#define LOGMASK_NSTREAMS 3
#define LOGMASK_SLICE (16u << 10) /* input handled at a time: bounds the buffers */
#define LOGMASK_MARK_LEN (sizeof(LOGMASK_MARK) - 1)

struct logmask_secret {
	char *v; /* owned: the value less its line terminators */
	size_t len;
};

struct logmask_stream {
	char name;
	char *c;               /* owned: pending bytes, not final yet */
	unsigned char *masked; /* owned: per pending byte */
	size_t len;
	uint64_t base; /* stream offset of c[0] */
	uint64_t hold; /* stream offset from which a secret may still start */
	bool in_run;   /* the last rendered byte was masked */
	char *line;    /* owned: rendered, final, not emitted yet */
	size_t line_len;
};

struct logmask {
	struct logmask_secret *sec;
	size_t nsec;
	size_t window; /* the longest span a secret can cover, gaps included */
	bool first[256];
	size_t *pos; /* scratch: the positions of one match */
	size_t cap;  /* of each pending array: window + LOGMASK_SLICE */
	struct logmask_stream st[LOGMASK_NSTREAMS];
	/* all streams in arrival order, from the first byte that may still
	 * start a secret */
	char *cc;
	unsigned char *cs; /* each byte's stream index */
	size_t clen;
	size_t ccount[LOGMASK_NSTREAMS];   /* bytes of each stream in cc */
	uint64_t cfirst[LOGMASK_NSTREAMS]; /* the stream offset of the first (when ccount) */
	logmask_emit_fn emit;
	void *ud;
};

static bool logmask_is_term(char c)
{
	return c == '\r' || c == '\n';
}

static int logmask_stream_index(char stream)
{
	switch (stream) {
	case 'o':
		return 0;
	case 'e':
		return 1;
	case 'h':
		return 2;
	default:
		return -1;
	}
}

struct logmask *logmask_new(const char *const *secrets, size_t n, logmask_emit_fn emit, void *ud)
{
	struct logmask *m = xcalloc(1, sizeof(*m));
	m->emit = emit;
	m->ud = ud;
	size_t longest = 0, alloc = 0;
	for (size_t i = 0; i < n; i++) {
		size_t len = 0, raw = strlen(secrets[i]);
		char *v = xmalloc(raw + 1);
		for (size_t j = 0; j < raw; j++)
			if (!logmask_is_term(secrets[i][j]))
				v[len++] = secrets[i][j];
		v[len] = '\0';
		if (len < LOGMASK_MIN_SECRET) {
			free(v);
			continue;
		}
		ARRAY_GROW(m->sec, m->nsec + 1, alloc);
		m->sec[m->nsec++] = (struct logmask_secret){v, len};
		m->first[(unsigned char)v[0]] = true;
		if (len > longest)
			longest = len;
	}
	m->window = xmul(longest, 1 + LOGMASK_MAX_GAP);
	m->pos = xmalloc(xmul(longest + 1, sizeof(*m->pos)));
	m->cap = m->window + LOGMASK_SLICE;
	static const char names[LOGMASK_NSTREAMS] = {'o', 'e', 'h'};
	for (int s = 0; s < LOGMASK_NSTREAMS; s++) {
		struct logmask_stream *st = &m->st[s];
		st->name = names[s];
		st->c = xmalloc(m->cap);
		st->masked = xmalloc(m->cap);
		st->line = xmalloc(KILN_LOGMASK_MAX_LINE + LOGMASK_MARK_LEN);
	}
	m->cc = xmalloc(m->cap);
	m->cs = xmalloc(m->cap);
	return m;
}

void logmask_free(struct logmask *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nsec; i++)
		free(m->sec[i].v);
	free(m->sec);
	free(m->pos);
	for (int s = 0; s < LOGMASK_NSTREAMS; s++) {
		free(m->st[s].c);
		free(m->st[s].masked);
		free(m->st[s].line);
	}
	free(m->cc);
	free(m->cs);
	free(m);
}

/* Whether sec matches t[p..n): 1 (positions in pos[0..sec->len)), 0 when t
 * ends before it could tell (more bytes may complete it), -1 if not. */
static int logmask_match_at(const char *t, size_t n, size_t p, const struct logmask_secret *sec,
			    size_t *pos)
{
	size_t k = p;
	for (size_t j = 0; j < sec->len; j++) {
		for (int gap = 0; j > 0 && gap < LOGMASK_MAX_GAP && k < n && logmask_is_term(t[k]);
		     gap++)
			k++;
		if (k >= n)
			return 0;
		if (t[k] != sec->v[j])
			return -1;
		pos[j] = k++;
	}
	return 1;
}

typedef void (*logmask_mark_fn)(struct logmask *m, void *ctx, size_t pos);

/* Marks every match starting in t[from..n); returns the first start where a
 * secret may still match once more bytes come, n if none.  With tags (the
 * arrival order's stream of each byte), starts whose whole window lies in
 * one stream are skipped: the stream's own scan saw the same bytes. */
static size_t logmask_scan(struct logmask *m, const char *t, const unsigned char *tags, size_t n,
			   size_t from, logmask_mark_fn mark, void *ctx)
{
	size_t undecided = n, seg_end = 0;
	for (size_t p = from; p < n; p++) {
		if (tags) {
			if (p >= seg_end)
				for (seg_end = p + 1; seg_end < n && tags[seg_end] == tags[p];)
					seg_end++;
			if (p + m->window < seg_end)
				p = seg_end - m->window;
		}
		if (!m->first[(unsigned char)t[p]])
			continue;
		for (size_t i = 0; i < m->nsec; i++) {
			int r = logmask_match_at(t, n, p, &m->sec[i], m->pos);
			if (r > 0) {
				for (size_t j = 0; j < m->sec[i].len; j++)
					mark(m, ctx, m->pos[j]);
			} else if (r == 0 && undecided == n) {
				undecided = p;
			}
		}
	}
	return undecided;
}

static void logmask_mark_stream(struct logmask *m, void *ctx, size_t pos)
{
	(void)m;
	struct logmask_stream *st = ctx;
	st->masked[pos] = 1;
}

static void logmask_mark_combined(struct logmask *m, void *ctx, size_t pos)
{
	(void)ctx;
	unsigned char s = m->cs[pos];
	uint64_t off = m->cfirst[s];
	for (size_t i = 0; i < pos; i++)
		off += m->cs[i] == s;
	struct logmask_stream *st = &m->st[s];
	assert(off >= st->base && off - st->base < st->len);
	st->masked[off - st->base] = 1;
}

/* Emits st's complete lines; with partial, the rest of the line too. */
static void logmask_emit_lines(struct logmask *m, struct logmask_stream *st, bool partial)
{
	size_t n = st->line_len;
	if (!partial) {
		while (n && st->line[n - 1] != '\n')
			n--;
	}
	if (!n)
		return;
	m->emit(m->ud, st->name, st->line, n);
	memmove(st->line, st->line + n, st->line_len - n);
	st->line_len -= n;
}

static void logmask_render(struct logmask *m, struct logmask_stream *st, char c, bool masked)
{
	if (st->line_len + LOGMASK_MARK_LEN > KILN_LOGMASK_MAX_LINE) {
		logmask_emit_lines(m, st, false);
		if (st->line_len + LOGMASK_MARK_LEN > KILN_LOGMASK_MAX_LINE)
			logmask_emit_lines(m, st, true); /* a line this long is cut here */
	}
	if (masked && !logmask_is_term(c)) {
		if (!st->in_run) {
			memcpy(st->line + st->line_len, LOGMASK_MARK, LOGMASK_MARK_LEN);
			st->line_len += LOGMASK_MARK_LEN;
		}
		st->in_run = true;
		return;
	}
	st->line[st->line_len++] = c;
	st->in_run = false;
}

/* Appends final unmasked bytes, cut as logmask_render() would one at a time. */
static void logmask_render_run(struct logmask *m, struct logmask_stream *st, const char *c,
			       size_t n)
{
	while (n) {
		if (st->line_len + LOGMASK_MARK_LEN > KILN_LOGMASK_MAX_LINE) {
			logmask_emit_lines(m, st, false);
			if (st->line_len + LOGMASK_MARK_LEN > KILN_LOGMASK_MAX_LINE)
				logmask_emit_lines(m, st, true);
		}
		size_t room = KILN_LOGMASK_MAX_LINE - LOGMASK_MARK_LEN - st->line_len + 1;
		size_t k = n < room ? n : room;
		memcpy(st->line + st->line_len, c, k);
		st->line_len += k;
		c += k;
		n -= k;
		st->in_run = false;
	}
}

/* Moves st's bytes before stream offset limit to its line buffer. */
static void logmask_finalize(struct logmask *m, struct logmask_stream *st, uint64_t limit)
{
	if (limit <= st->base)
		return;
	size_t n = (size_t)(limit - st->base);
	assert(n <= st->len);
	for (size_t i = 0; i < n;) {
		if (st->masked[i]) {
			logmask_render(m, st, st->c[i], true);
			i++;
			continue;
		}
		const unsigned char *q = memchr(st->masked + i, 1, n - i);
		size_t j = q ? (size_t)(q - st->masked) : n;
		logmask_render_run(m, st, st->c + i, j - i);
		i = j;
	}
	memmove(st->c, st->c + n, st->len - n);
	memmove(st->masked, st->masked + n, st->len - n);
	st->len -= n;
	st->base += n;
}

/* After new bytes: search, then finalize and emit what is decided. */
static void logmask_settle(struct logmask *m, int s, size_t fresh, bool end)
{
	struct logmask_stream *st = &m->st[s];
	if (m->nsec && fresh) {
		size_t from = (size_t)(st->hold - st->base);
		st->hold = st->base +
			   logmask_scan(m, st->c, NULL, st->len, from, logmask_mark_stream, st);
		size_t keep =
			logmask_scan(m, m->cc, m->cs, m->clen, 0, logmask_mark_combined, NULL);
		for (size_t i = 0; i < keep; i++) {
			m->ccount[m->cs[i]]--;
			m->cfirst[m->cs[i]]++;
		}
		memmove(m->cc, m->cc + keep, m->clen - keep);
		memmove(m->cs, m->cs + keep, m->clen - keep);
		m->clen -= keep;
	}
	if (end || !m->nsec) {
		m->clen = 0;
		memset(m->ccount, 0, sizeof(m->ccount));
		for (int t = 0; t < LOGMASK_NSTREAMS; t++)
			m->st[t].hold = m->st[t].base + m->st[t].len;
	}
	for (int t = 0; t < LOGMASK_NSTREAMS; t++) {
		struct logmask_stream *ts = &m->st[t];
		uint64_t limit = ts->hold;
		if (m->ccount[t] && m->cfirst[t] < limit)
			limit = m->cfirst[t];
		logmask_finalize(m, ts, limit);
		logmask_emit_lines(m, ts, end);
		if (end)
			ts->in_run = false;
	}
}

void logmask_feed(struct logmask *m, char stream, const char *data, size_t len)
{
	int s = logmask_stream_index(stream);
	assert(s >= 0);
	struct logmask_stream *st = &m->st[s];
	while (len) {
		size_t n = len < LOGMASK_SLICE ? len : LOGMASK_SLICE;
		/* settle() leaves at most window bytes in each array */
		assert(st->len + n <= m->cap && m->clen + n <= m->cap);
		memcpy(st->c + st->len, data, n);
		memset(st->masked + st->len, 0, n);
		if (m->nsec) {
			if (!m->ccount[s])
				m->cfirst[s] = st->base + st->len;
			m->ccount[s] += n;
			memcpy(m->cc + m->clen, data, n);
			memset(m->cs + m->clen, s, n);
			m->clen += n;
		}
		st->len += n;
		logmask_settle(m, s, n, false);
		data += n;
		len -= n;
	}
}

void logmask_flush(struct logmask *m)
{
	logmask_settle(m, 0, 0, true);
}
