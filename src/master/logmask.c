/*
 * Secret masking over a step's output pieces (logmask.h).  Each secret
 * becomes a few patterns (its value, its lines, its base64 and URL-encoded
 * forms), indexed by first byte.  Each stream keeps its undecided bytes (a
 * pattern may still start among them), and the arrival-ordered tail of all
 * streams is searched too; a byte is final once neither search can still
 * use it, then it is rendered into its stream's line buffer and emitted a
 * line at a time.
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

/* Pattern flags */
#define LOGMASK_P_GAPS (1u << 0) /* up to LOGMASK_MAX_GAP terminators between two bytes */
#define LOGMASK_P_URL (1u << 1)  /* a byte may also be written %XX (either case), ' ' as '+' */

struct logmask_secret {
	char *v; /* owned: the bytes to find */
	size_t len;
	unsigned flags;
};

/* The pending and line buffers grow as bytes arrive (up to cap and
 * KILN_LOGMASK_MAX_LINE + the mark): a masker is made per step log, most
 * of which see a few lines on one or two streams. */
struct logmask_stream {
	char name;
	char *c;               /* owned: pending bytes, not final yet */
	unsigned char *masked; /* owned: per pending byte */
	size_t len;
	size_t c_alloc, masked_alloc;
	uint64_t base; /* stream offset of c[0] */
	uint64_t hold; /* stream offset from which a secret may still start */
	bool in_run;   /* the last rendered byte was masked */
	char *line;    /* owned: rendered, final, not emitted yet */
	size_t line_len;
	size_t line_alloc;
};

/* The patterns of a list of secrets, indexed: made once, shared by the
 * maskers of every log that masks the same secrets (logmask.h). */
struct logmask_set {
	struct logmask_secret *sec;
	size_t nsec;
	size_t window;  /* the longest span a pattern can cover, gaps included */
	size_t longest; /* the longest pattern */
	/* the patterns that may start with byte c: bidx[bstart[c]..bstart[c + 1]) */
	uint32_t bstart[257];
	uint32_t *bidx;
	/* a filter on the first two bytes: bit c0 * 256 + c1 is set when some
	 * pattern may start with c0 then c1 (a terminator may follow any c0 of a
	 * pattern with gaps; a URL form's c0 may be followed by anything) */
	uint8_t pair[65536 / 8];
	size_t cap; /* of each pending array: window + LOGMASK_SLICE */
	/* slice "steps": the bytes a pattern may start with, when there are at
	 * most LOGMASK_FIRST_MAX of them (nfirst; -1: more), so that a scan
	 * jumps between their occurrences with memchr */
	unsigned char first[4];
	int nfirst;
};
#define LOGMASK_FIRST_MAX 4

struct logmask {
	const struct logmask_set *set;
	struct logmask_set *own_set; /* made by logmask_new(), else NULL */
	size_t *pos;                 /* scratch: the positions of one match */
	struct logmask_stream st[LOGMASK_NSTREAMS];
	/* all streams in arrival order, from the first byte that may still
	 * start a secret */
	char *cc;
	unsigned char *cs; /* each byte's stream index */
	size_t clen;
	size_t cc_alloc, cs_alloc;
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

static const char logmask_b64_std[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Adds v[0..len) (copied) unless too short, a duplicate or past the cap. */
static void logmask_add(struct logmask_set *m, size_t *alloc, const char *v, size_t len,
			unsigned flags)
{
	if (len < LOGMASK_MIN_SECRET || m->nsec >= KILN_LOGMASK_MAX_PATTERNS)
		return;
	for (size_t i = 0; i < m->nsec; i++)
		if (m->sec[i].len == len && m->sec[i].flags == flags &&
		    !memcmp(m->sec[i].v, v, len))
			return;
	ARRAY_GROW(m->sec, m->nsec + 1, *alloc);
	char *copy = xmalloc(len + 1);
	memcpy(copy, v, len);
	copy[len] = '\0';
	m->sec[m->nsec++] = (struct logmask_secret){copy, len, flags};
}

/*
 * The base64 forms of v: its own encoding (padded), and for each of the
 * three alignments at which v may sit inside a longer encoded text ("user:"
 * before a token in a Basic auth header), the characters that depend on
 * v's bytes alone, in the standard and the URL-safe alphabet.
 */
static void logmask_add_base64(struct logmask_set *m, size_t *alloc, const char *v, size_t len)
{
	size_t cap = (len + 2) / 3 * 4 + 8;
	char *enc = xmalloc(cap);
	unsigned char *in = xmalloc(len + 2);
	for (size_t k = 0; k < 3; k++) {
		memset(in, 0, k);
		memcpy(in + k, v, len);
		size_t n = k + len, o = 0;
		for (size_t i = 0; i < n; i += 3) {
			uint32_t w = (uint32_t)in[i] << 16;
			if (i + 1 < n)
				w |= (uint32_t)in[i + 1] << 8;
			if (i + 2 < n)
				w |= in[i + 2];
			enc[o++] = logmask_b64_std[(w >> 18) & 63];
			enc[o++] = logmask_b64_std[(w >> 12) & 63];
			enc[o++] = i + 1 < n ? logmask_b64_std[(w >> 6) & 63] : '=';
			enc[o++] = i + 2 < n ? logmask_b64_std[w & 63] : '=';
		}
		if (k == 0)
			logmask_add(m, alloc, enc, o, LOGMASK_P_GAPS);
		/* character i holds input bits [6i, 6i + 6): v's are [8k, 8n) */
		size_t from = (8 * k + 5) / 6, to = 8 * n / 6;
		if (to <= from)
			continue;
		logmask_add(m, alloc, enc + from, to - from, LOGMASK_P_GAPS);
		for (size_t i = from; i < to; i++)
			enc[i] = enc[i] == '+' ? '-' : enc[i] == '/' ? '_' : enc[i];
		logmask_add(m, alloc, enc + from, to - from, LOGMASK_P_GAPS);
	}
	free(in);
	free(enc);
}

static bool logmask_url_unreserved(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

/* The patterns of one secret value raw[0..raw_len): its value and lines
 * (pass 0), its encodings (pass 1: dropped first when the cap is reached). */
static void logmask_add_secret(struct logmask_set *m, size_t *alloc, const char *raw,
			       size_t raw_len, int pass)
{
	if (raw_len > KILN_LOGMASK_MAX_SECRET)
		raw_len = KILN_LOGMASK_MAX_SECRET;
	/* the value as printed, line terminators anywhere (gaps) */
	char *v = xmalloc(raw_len + 1);
	size_t len = 0;
	bool multi = false, url = false;
	for (size_t j = 0; j < raw_len; j++) {
		if (!logmask_is_term(raw[j]))
			v[len++] = raw[j];
		else
			multi = true;
		url = url || !logmask_url_unreserved((unsigned char)raw[j]);
	}
	if (len < LOGMASK_MIN_SECRET) { /* nor any form of it: short words stay */
		free(v);
		return;
	}
	if (pass == 0)
		logmask_add(m, alloc, v, len, LOGMASK_P_GAPS);
	free(v);
	if (pass == 1) {
		/* percent-encoded, whichever bytes the encoder chose to encode */
		if (url)
			logmask_add(m, alloc, raw, raw_len, LOGMASK_P_URL);
		logmask_add_base64(m, alloc, raw, raw_len);
		return;
	}
	/* each line alone (a command may print one line of a key) */
	for (size_t j = 0; multi && j < raw_len;) {
		size_t e = j;
		while (e < raw_len && !logmask_is_term(raw[e]))
			e++;
		logmask_add(m, alloc, raw + j, e - j, LOGMASK_P_GAPS);
		j = e + 1;
	}
}

/* One pattern's longest span in the output. */
static size_t logmask_span(const struct logmask_secret *sec)
{
	return xmul(sec->len, sec->flags & LOGMASK_P_URL ? 3 : 1 + LOGMASK_MAX_GAP);
}

static void logmask_pair_set(struct logmask_set *m, unsigned c0, unsigned c1)
{
	m->pair[(c0 * 256 + c1) / 8] |= (uint8_t)(1u << (c1 % 8));
}

/* Indexes the patterns by the bytes they may start with. */
static void logmask_index(struct logmask_set *m)
{
	uint32_t count[256] = {0};
	for (size_t i = 0; i < m->nsec; i++) {
		const struct logmask_secret *sec = &m->sec[i];
		count[(unsigned char)sec->v[0]]++;
		if (sec->flags & LOGMASK_P_URL) {
			if (sec->v[0] != '%')
				count['%']++;
			if (sec->v[0] == ' ')
				count['+']++;
		}
	}
	m->bstart[0] = 0;
	m->nfirst = 0;
	for (int c = 0; c < 256; c++) {
		m->bstart[c + 1] = m->bstart[c] + count[c];
		if (count[c] && m->nfirst >= 0) {
			if (m->nfirst < LOGMASK_FIRST_MAX)
				m->first[m->nfirst++] = (unsigned char)c;
			else
				m->nfirst = -1;
		}
	}
	m->bidx = xmalloc(xmul(m->bstart[256] + 1, sizeof(*m->bidx)));
	for (size_t i = 0; i < m->nsec; i++) {
		const struct logmask_secret *sec = &m->sec[i];
		unsigned c0 = (unsigned char)sec->v[0];
		logmask_pair_set(m, c0, (unsigned char)sec->v[1]);
		logmask_pair_set(m, c0, '\r');
		logmask_pair_set(m, c0, '\n');
		if (sec->flags & LOGMASK_P_URL) {
			/* "%XX" or '+' may stand for the first byte too */
			memset(m->pair + c0 * 32, 0xff, 32);
			memset(m->pair + '%' * 32, 0xff, 32);
			memset(m->pair + '+' * 32, 0xff, 32);
		}
	}
	uint32_t fill[256];
	memcpy(fill, m->bstart, sizeof(fill));
	for (size_t i = 0; i < m->nsec; i++) {
		const struct logmask_secret *sec = &m->sec[i];
		m->bidx[fill[(unsigned char)sec->v[0]]++] = (uint32_t)i;
		if (sec->flags & LOGMASK_P_URL) {
			if (sec->v[0] != '%')
				m->bidx[fill['%']++] = (uint32_t)i;
			if (sec->v[0] == ' ')
				m->bidx[fill['+']++] = (uint32_t)i;
		}
	}
}

struct logmask_set *logmask_set_new(const char *const *secrets, size_t n)
{
	struct logmask_set *ks = xcalloc(1, sizeof(*ks));
	size_t alloc = 0;
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < n; i++)
			logmask_add_secret(ks, &alloc, secrets[i], strlen(secrets[i]), pass);
	for (size_t i = 0; i < ks->nsec; i++) {
		size_t span = logmask_span(&ks->sec[i]);
		if (span > ks->window)
			ks->window = span;
		if (ks->sec[i].len > ks->longest)
			ks->longest = ks->sec[i].len;
	}
	logmask_index(ks);
	ks->cap = ks->window + LOGMASK_SLICE;
	return ks;
}

void logmask_set_free(struct logmask_set *ks)
{
	if (!ks)
		return;
	for (size_t i = 0; i < ks->nsec; i++)
		free(ks->sec[i].v);
	free(ks->sec);
	free(ks->bidx);
	free(ks);
}

bool logmask_set_empty(const struct logmask_set *ks)
{
	return ks->nsec == 0;
}

struct logmask *logmask_new_shared(const struct logmask_set *ks, logmask_emit_fn emit, void *ud)
{
	struct logmask *m = xcalloc(1, sizeof(*m));
	m->set = ks;
	m->emit = emit;
	m->ud = ud;
	if (ks->nsec)
		m->pos = xmalloc(xmul(xmul(ks->longest, 3) + 1, sizeof(*m->pos)));
	static const char names[LOGMASK_NSTREAMS] = {'o', 'e', 'h'};
	for (int s = 0; s < LOGMASK_NSTREAMS; s++)
		m->st[s].name = names[s];
	return m;
}

struct logmask *logmask_new(const char *const *secrets, size_t n, logmask_emit_fn emit, void *ud)
{
	struct logmask_set *ks = logmask_set_new(secrets, n);
	struct logmask *m = logmask_new_shared(ks, emit, ud);
	m->own_set = ks;
	return m;
}

void logmask_free(struct logmask *m)
{
	if (!m)
		return;
	logmask_set_free(m->own_set);
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

static int logmask_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Whether sec matches t[p..n): 1 (the bytes it covers in pos[0..*ret_npos),
 * gaps not included), 0 when t ends before it could tell (more bytes may
 * complete it), -1 if not. */
static int logmask_match_at(const char *t, size_t n, size_t p, const struct logmask_secret *sec,
			    size_t *pos, size_t *ret_npos)
{
	size_t k = p, np = 0;
	bool gaps = sec->flags & LOGMASK_P_GAPS, url = sec->flags & LOGMASK_P_URL;
	for (size_t j = 0; j < sec->len; j++) {
		for (int gap = 0;
		     gaps && j > 0 && gap < LOGMASK_MAX_GAP && k < n && logmask_is_term(t[k]);
		     gap++)
			k++;
		if (k >= n)
			return 0;
		if (t[k] == sec->v[j] || (url && t[k] == '+' && sec->v[j] == ' ')) {
			pos[np++] = k++;
			continue;
		}
		if (!url || t[k] != '%')
			return -1;
		if (k + 1 >= n)
			return 0;
		int hi = logmask_hex(t[k + 1]);
		if (hi < 0)
			return -1; /* before reading t[k + 2], which may be past the end */
		if (k + 2 >= n)
			return 0;
		int lo = logmask_hex(t[k + 2]);
		if (lo < 0 || (unsigned char)sec->v[j] != (unsigned)(hi * 16 + lo))
			return -1;
		pos[np++] = k;
		pos[np++] = k + 1;
		pos[np++] = k + 2;
		k += 3;
	}
	*ret_npos = np;
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
	/* slice "steps": with few first bytes and one stream, jump to the next
	 * byte a pattern may start with (the bytes skipped would fail the
	 * bstart test below); next[k]: the next occurrence of first[k] at or
	 * after the position it was searched from, n if none */
	const struct logmask_set *set = m->set;
	int nf = tags ? -1 : set->nfirst;
	size_t next[LOGMASK_FIRST_MAX];
	bool searched[LOGMASK_FIRST_MAX] = {false};
	for (size_t p = from; p < n; p++) {
		if (nf >= 0) {
			size_t q = n;
			for (int k = 0; k < nf; k++) {
				if (!searched[k] || (next[k] < p && next[k] < n)) {
					const char *f = memchr(t + p, set->first[k], n - p);
					next[k] = f ? (size_t)(f - t) : n;
					searched[k] = true;
				}
				if (next[k] < q)
					q = next[k];
			}
			if (q >= n)
				break;
			p = q;
		}
		if (tags) {
			if (p >= seg_end)
				for (seg_end = p + 1; seg_end < n && tags[seg_end] == tags[p];)
					seg_end++;
			if (p + m->set->window < seg_end)
				p = seg_end - m->set->window;
		}
		unsigned char c = (unsigned char)t[p];
		if (p + 1 < n) {
			unsigned c1 = (unsigned char)t[p + 1];
			if (!(m->set->pair[(c * 256u + c1) / 8] & (1u << (c1 % 8))))
				continue;
		}
		if (m->set->bstart[c] == m->set->bstart[c + 1])
			continue;
		for (uint32_t b = m->set->bstart[c]; b < m->set->bstart[c + 1]; b++) {
			size_t np = 0;
			int r = logmask_match_at(t, n, p, &m->set->sec[m->set->bidx[b]], m->pos,
						 &np);
			if (r > 0) {
				for (size_t j = 0; j < np; j++)
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
	/* at most KILN_LOGMASK_MAX_LINE + LOGMASK_MARK_LEN: the cut above */
	ARRAY_GROW(st->line, st->line_len + LOGMASK_MARK_LEN, st->line_alloc);
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
		ARRAY_GROW(st->line, st->line_len + k, st->line_alloc);
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
	if (m->set->nsec && fresh) {
		size_t from = (size_t)(st->hold - st->base);
		st->hold = st->base +
			   logmask_scan(m, st->c, NULL, st->len, from, logmask_mark_stream, st);
		size_t keep;
		if (m->ccount[s] == m->clen) {
			/* one stream only: its own scan saw these very bytes, and
			 * what it left undecided is what the combined one would */
			keep = st->hold > m->cfirst[s] ? (size_t)(st->hold - m->cfirst[s]) : 0;
			if (keep > m->clen)
				keep = m->clen;
			m->ccount[s] -= keep;
			m->cfirst[s] += keep;
		} else {
			keep = logmask_scan(m, m->cc, m->cs, m->clen, 0, logmask_mark_combined,
					    NULL);
			for (size_t i = 0; i < keep; i++) {
				m->ccount[m->cs[i]]--;
				m->cfirst[m->cs[i]]++;
			}
		}
		memmove(m->cc, m->cc + keep, m->clen - keep);
		memmove(m->cs, m->cs + keep, m->clen - keep);
		m->clen -= keep;
	}
	if (end || !m->set->nsec) {
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
	if (!m->set->nsec) {
		/* nothing to find (slice "perfsteps2"): no byte is ever held back,
		 * so the bytes go straight to the line buffer, cut and emitted as
		 * settle() would, a slice at a time (st->len is always 0 here) */
		while (len) {
			size_t n = len < LOGMASK_SLICE ? len : LOGMASK_SLICE;
			logmask_render_run(m, st, data, n);
			logmask_emit_lines(m, st, false);
			data += n;
			len -= n;
		}
		return;
	}
	while (len) {
		size_t n = len < LOGMASK_SLICE ? len : LOGMASK_SLICE;
		/* settle() leaves at most window bytes in each array */
		assert(st->len + n <= m->set->cap && m->clen + n <= m->set->cap);
		ARRAY_GROW(st->c, st->len + n, st->c_alloc);
		ARRAY_GROW(st->masked, st->len + n, st->masked_alloc);
		memcpy(st->c + st->len, data, n);
		memset(st->masked + st->len, 0, n);
		if (m->set->nsec) {
			if (!m->ccount[s])
				m->cfirst[s] = st->base + st->len;
			m->ccount[s] += n;
			ARRAY_GROW(m->cc, m->clen + n, m->cc_alloc);
			ARRAY_GROW(m->cs, m->clen + n, m->cs_alloc);
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
