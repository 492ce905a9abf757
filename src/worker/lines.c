/*
 * kiln-worker output shaping (lines.h): turns raw child output into complete,
 * valid-UTF-8 lines the way Buildbot's worker does with its default
 * newline_re, and batches lines and status values into `update` args.
 */
#include "worker/lines.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

#include "common/limits.h"
#include "common/xalloc.h"
#include "proto/msg.h"

/*
 * The caps set in lines_init leave room for every append marked with this
 * (cur holds max_line + 8; a repaired line is at most 3 bytes per input byte
 * plus its newline): a failure there is a bug in this file, not input.
 */
#define LINES_FITS(expr)                                                                           \
	do {                                                                                       \
		int lines_fits_r_ = (expr);                                                        \
		assert(lines_fits_r_ == 0);                                                        \
		(void)lines_fits_r_;                                                               \
	} while (0)

/* ---- UTF-8 ---------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at p (n bytes available), or 0. */
static size_t lines_utf8_seq(const unsigned char *p, size_t n)
{
	unsigned char c = p[0];
	size_t len;
	unsigned char lo = 0x80, hi = 0xbf; /* range of the second byte */

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0; /* no overlongs */
		else if (c == 0xed)
			hi = 0x9f; /* no surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f; /* <= U+10FFFF */
	} else
		return 0;
	if (n < len || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	return len;
}

#define LINES_HI8 0x8080808080808080ull /* the high bit of each byte of a word */

static inline uint64_t lines_load8(const unsigned char *p)
{
	uint64_t x;
	memcpy(&x, p, sizeof(x));
	return x;
}

bool lines_utf8_valid(const char *p, size_t n)
{
	const unsigned char *u = (const unsigned char *)p;
	size_t i = 0;
	while (i < n) {
		/* ASCII fast path: 8 bytes at a time while no high bit is set */
		if (i + 8 <= n && !(lines_load8(u + i) & LINES_HI8)) {
			i += 8;
			continue;
		}
		if (u[i] < 0x80) {
			i++;
			continue;
		}
		size_t k = lines_utf8_seq(u + i, n - i);
		if (!k)
			return false;
		i += k;
	}
	return true;
}

int lines_utf8_repair(struct buf *out, const char *p, size_t n)
{
	const unsigned char *u = (const unsigned char *)p;
	size_t run = 0; /* start of the current valid run */
	size_t i = 0;
	while (i < n) {
		if (i + 8 <= n && !(lines_load8(u + i) & LINES_HI8)) {
			i += 8;
			continue;
		}
		if (u[i] < 0x80) {
			i++;
			continue;
		}
		size_t k = lines_utf8_seq(u + i, n - i);
		if (k) {
			i += k;
			continue;
		}
		if (buf_add(out, p + run, i - run) < 0 || buf_add(out, "\xef\xbf\xbd", 3) < 0)
			return -E2BIG;
		i++;
		run = i;
	}
	return buf_add(out, p + run, n - run) < 0 ? -E2BIG : 0;
}

void lines_pack_repaired(struct proto_enc *e, const char *p, size_t n)
{
	struct buf b;
	buf_init(&b, n * 3 + 8);
	LINES_FITS(lines_utf8_repair(&b, p, n)); /* 3n + 8 bytes hold any repair */
	proto_pack_strn(e, b.ptr, b.len);
	buf_release(&b);
}

/* ---- line splitter ---------------------------------------------------------- */

/*
 * Speed matters here (a 50 MB log goes through byte by byte otherwise): plain
 * bytes are found a word at a time and copied in runs; a line that starts and
 * ends with '\n' inside one chunk is emitted straight from the chunk; the
 * current line is only copied when it spans chunks, ends in another newline
 * sequence or is cut.  Only '\n', '\r', ESC and backspace end a plain run.
 */
static const unsigned char lines_special[32] = {
	['\b'] = 1,
	['\n'] = 1,
	['\r'] = 1,
	['\033'] = 1,
};

/* End of the run of plain bytes p[i..ret) (n if none ends it); *ret_hi is set
 * if the run holds a byte >= 0x80 (it then needs UTF-8 checking). */
static size_t lines_scan(const unsigned char *p, size_t i, size_t n, bool *ret_hi)
{
	uint64_t acc = 0;
	for (;;) {
		/* whole words without any byte < 0x20 (exact test, no false negatives) */
		while (i + 8 <= n) {
			uint64_t x = lines_load8(p + i);
			if ((x - 0x2020202020202020ull) & ~x & LINES_HI8)
				break;
			acc |= x;
			i += 8;
		}
		/* a word with a control byte (maybe a tab), or the tail: byte by byte */
		size_t end = n - i > 8 ? i + 8 : n;
		for (; i < end; i++) {
			unsigned char c = p[i];
			if (c < 0x20 && lines_special[c]) {
				*ret_hi = acc & LINES_HI8;
				return i;
			}
			acc |= c;
		}
		if (i == n) {
			*ret_hi = acc & LINES_HI8;
			return n;
		}
	}
}

void lines_init(struct lines *l, size_t max_line, lines_emit_fn emit, void *ud)
{
	memset(l, 0, sizeof(*l));
	if (max_line < 4)
		max_line = 4;
	l->max_line = max_line;
	buf_init(&l->cur, max_line + 8);
	buf_init(&l->out, max_line * 3 + 8);
	l->emit = emit;
	l->ud = ud;
}

void lines_release(struct lines *l)
{
	buf_release(&l->cur);
	buf_release(&l->out);
}

/* Emits s[0..n) + '\n' where s[n] is that '\n' already (s in the fed data). */
static void lines_emit_direct(struct lines *l, const char *s, size_t n, bool hi, double t)
{
	if (!hi || lines_utf8_valid(s, n)) {
		l->emit(l->ud, s, n + 1, t);
	} else {
		buf_reset(&l->out);
		LINES_FITS(lines_utf8_repair(&l->out, s, n));
		LINES_FITS(buf_addch(&l->out, '\n'));
		l->emit(l->ud, l->out.ptr, l->out.len, t);
	}
	l->cur_time = t;
}

/* Emits cur[0..n) + '\n' and keeps the rest of cur (at most 3 bytes: an
 * incomplete UTF-8 sequence moved past a cut) as the next line's start. */
static void lines_emit_prefix(struct lines *l, size_t n, double t)
{
	double et = l->cur.len ? l->cur_time : t;
	char *s = l->cur.ptr;
	size_t rest = l->cur.len - n;
	if (lines_utf8_valid(s, n)) {
		if (rest == 0) {
			LINES_FITS(buf_addch(&l->cur, '\n'));
			l->emit(l->ud, l->cur.ptr, n + 1, et);
			buf_reset(&l->cur);
		} else {
			char tail[4];
			memcpy(tail, s + n, rest);
			s[n] = '\n';
			l->emit(l->ud, s, n + 1, et);
			memcpy(l->cur.ptr, tail, rest);
			buf_setlen(&l->cur, rest);
		}
	} else {
		buf_reset(&l->out);
		LINES_FITS(lines_utf8_repair(&l->out, s, n));
		LINES_FITS(buf_addch(&l->out, '\n'));
		l->emit(l->ud, l->out.ptr, l->out.len, et);
		buf_consume(&l->cur, n);
	}
	l->cur_time = t;
}

static void lines_newline(struct lines *l, double t)
{
	lines_emit_prefix(l, l->cur.len, t);
}

/* cur has reached max_line: cut, but not inside a UTF-8 sequence (an
 * incomplete tail moves to the next line). */
static void lines_cut(struct lines *l, double t)
{
	const unsigned char *u = (const unsigned char *)l->cur.ptr;
	size_t len = l->cur.len, cut = len;
	for (size_t back = 1; back <= 3 && back <= len; back++) {
		unsigned char b = u[len - back];
		if ((b & 0xc0) == 0x80)
			continue;
		if (b >= 0xc0) {
			size_t need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2;
			if (back < need)
				cut = len - back;
		}
		break;
	}
	if (cut == 0)
		cut = len;
	lines_emit_prefix(l, cut, t);
}

/* Appends text s[0..n) to the current line, cutting at max_line. */
static void lines_put_run(struct lines *l, const char *s, size_t n, double t)
{
	if (n && l->cur.len == 0)
		l->cur_time = t;
	while (n) {
		size_t room = l->max_line - l->cur.len; /* cur.len < max_line between calls */
		size_t k = n < room ? n : room;
		LINES_FITS(buf_add(&l->cur, s, k));
		s += k;
		n -= k;
		if (l->cur.len < l->max_line)
			break;
		lines_cut(l, t);
	}
}

static void lines_put(struct lines *l, char c, double t)
{
	lines_put_run(l, &c, 1, t);
}

/* For an ESC sequence being matched: 1 complete, 0 could still match, -1 cannot. */
static int lines_esc_state(const char *s, size_t n)
{
	if (n < 2)
		return 0;
	if (s[1] != '[')
		return -1;
	if (n == 2)
		return 0;
	if (n == 3 && s[2] == 'u')
		return 1;
	size_t d1 = 0, d2 = 0;
	bool semi = false;
	for (size_t i = 2; i < n; i++) {
		char c = s[i];
		if (c >= '0' && c <= '9') {
			if (semi)
				d2++;
			else
				d1++;
			continue;
		}
		if (c == ';' && !semi && d1 > 0) {
			semi = true;
			continue;
		}
		if (i != n - 1)
			return -1;
		if ((c == 'H' || c == 'f') && semi && d2 > 0)
			return 1;
		if (c == 'J' && !semi && d1 == 1 && s[2] == '2')
			return 1;
		return -1;
	}
	return 0;
}

void lines_feed(struct lines *l, const void *data, size_t len, double t)
{
	const char *p = data;
	for (size_t i = 0; i < len; i++) {
		char c = p[i];
	again:
		if (l->esc_len) {
			if (l->esc[0] == '\r') {
				/* \r\n and \r followed by anything are both one newline */
				l->esc_len = 0;
				lines_newline(l, t);
				if (c == '\n')
					continue;
				goto again;
			}
			l->esc[l->esc_len++] = c;
			int st = lines_esc_state(l->esc, l->esc_len);
			if (st == 1) {
				l->esc_len = 0;
				lines_newline(l, t);
				continue;
			}
			if (st == 0 && l->esc_len < sizeof(l->esc) - 1)
				continue;
			/* not a newline sequence: its bytes are text, and c is looked at again */
			size_t n = l->esc_len - 1;
			l->esc_len = 0;
			for (size_t k = 0; k < n; k++)
				lines_put(l, l->esc[k], t);
			goto again;
		}
		if (c == '\b') {
			if (!l->in_bs)
				lines_newline(l, t);
			l->in_bs = true;
			continue;
		}
		l->in_bs = false;
		if (c == '\n') {
			lines_newline(l, t);
		} else if (c == '\r' || c == '\033') {
			l->esc[0] = c;
			l->esc_len = 1;
		} else {
			/* a run of plain text p[i..j), c being its first byte */
			bool hi;
			size_t j = lines_scan((const unsigned char *)p, i, len, &hi);
			if (l->cur.len == 0 && j < len && p[j] == '\n' && j - i < l->max_line) {
				/* a whole line inside this chunk, '\n' included: no copy */
				lines_emit_direct(l, p + i, j - i, hi, t);
				i = j;
				continue;
			}
			lines_put_run(l, p + i, j - i, t);
			i = j - 1;
		}
	}
}

void lines_finish(struct lines *l)
{
	double t = l->cur_time;
	if (l->esc_len) {
		if (l->esc[0] == '\r') {
			l->esc_len = 0;
			lines_newline(l, t);
		} else {
			size_t n = l->esc_len;
			l->esc_len = 0;
			for (size_t k = 0; k < n; k++)
				lines_put(l, l->esc[k], t);
		}
	}
	if (l->cur.len)
		lines_newline(l, t);
	l->in_bs = false;
}

void lines_cut_partial(struct lines *l)
{
	if (!l->esc_len && !l->in_bs && l->cur.len)
		lines_newline(l, l->cur_time);
}

/* ---- batcher ------------------------------------------------------------------ */

struct batch_item {
	char *key;     /* owned */
	char *logname; /* owned; only for "log" */
	bool output;   /* a line-info triple; else text holds a packed value */
	struct buf text;
	uint32_t *offs; /* owned */
	double *times;  /* owned */
	size_t nlines, caplines;
};

void batch_init(struct batch *b, size_t max_weight, batch_flush_fn flush, void *ud)
{
	memset(b, 0, sizeof(*b));
	b->max_weight = max_weight ? max_weight : 65536;
	b->flush = flush;
	b->ud = ud;
}

void batch_clear(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		struct batch_item *it = &b->items[i];
		free(it->key);
		free(it->logname);
		buf_release(&it->text);
		free(it->offs);
		free(it->times);
	}
	b->n = 0;
	b->weight = 0;
}

void batch_release(struct batch *b)
{
	batch_clear(b);
	free(b->items);
	b->items = NULL;
	b->cap = 0;
}

bool batch_empty(const struct batch *b)
{
	return b->n == 0;
}

void batch_flush(struct batch *b)
{
	if (b->n == 0)
		return;
	if (b->flush)
		b->flush(b->ud);
	if (b->n)
		batch_clear(b);
}

static struct batch_item *batch_new_item(struct batch *b, const char *key, size_t weight)
{
	if (b->n && b->weight + weight > b->max_weight)
		batch_flush(b);
	ARRAY_GROW(b->items, b->n + 1, b->cap);
	struct batch_item *it = &b->items[b->n++];
	memset(it, 0, sizeof(*it));
	it->key = xstrdup(key);
	buf_init(&it->text, KILN_MAX_WS_FRAME);
	return it;
}

static bool str_eq0(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

void batch_add_line(struct batch *b, const char *key, const char *logname, const char *line,
		    size_t len, double t)
{
	size_t w = len + 16;
	if (b->n && b->weight + w > b->max_weight)
		batch_flush(b);
	struct batch_item *it = b->n ? &b->items[b->n - 1] : NULL;
	if (!it || !it->output || strcmp(it->key, key) != 0 || !str_eq0(it->logname, logname)) {
		it = batch_new_item(b, key, w);
		it->output = true;
		it->logname = logname ? xstrdup(logname) : NULL;
	}
	if (buf_add(&it->text, line, len) < 0)
		return; /* past the frame cap: the line is dropped */
	if (it->nlines == it->caplines) {
		/* two arrays, one capacity: times follows offs */
		size_t cap = it->caplines;
		ARRAY_GROW(it->offs, it->nlines + 1, cap);
		it->times = xreallocarray(it->times, cap, sizeof(*it->times));
		it->caplines = cap;
	}
	it->offs[it->nlines] = (uint32_t)(it->text.len - 1);
	it->times[it->nlines] = t;
	it->nlines++;
	b->weight += w;
}

void batch_add_text(struct batch *b, const char *key, const char *text, double t)
{
	const char *p = text;
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		struct buf line;
		buf_init(&line, n * 3 + 8); /* room for the worst repair and '\n' */
		LINES_FITS(lines_utf8_repair(&line, p, n));
		LINES_FITS(buf_addch(&line, '\n'));
		batch_add_line(b, key, NULL, line.ptr, line.len, t);
		buf_release(&line);
		p += n + (nl ? 1 : 0);
	}
}

int batch_add_packed(struct batch *b, const char *key, const void *packed, size_t len)
{
	if (len > KILN_MAX_WS_FRAME)
		return -E2BIG; /* before any item: a value is sent whole or not at all */
	struct batch_item *it = batch_new_item(b, key, 20);
	LINES_FITS(buf_add(&it->text, packed, len));
	b->weight += 20;
	return 0;
}

void batch_add_int(struct batch *b, const char *key, int64_t v)
{
	struct proto_enc e;
	proto_enc_init(&e);
	proto_pack_int(&e, v);
	LINES_FITS(batch_add_packed(b, key, e.sb.data, e.sb.size)); /* 9 bytes */
	proto_enc_release(&e);
}

void batch_add_double(struct batch *b, const char *key, double v)
{
	struct proto_enc e;
	proto_enc_init(&e);
	proto_pack_double(&e, v);
	LINES_FITS(batch_add_packed(b, key, e.sb.data, e.sb.size)); /* 9 bytes */
	proto_enc_release(&e);
}

static void batch_pack_triple(struct proto_enc *e, const struct batch_item *it)
{
	proto_pack_array(e, 3);
	proto_pack_strn(e, it->text.ptr, it->text.len);
	proto_pack_array(e, (uint32_t)it->nlines);
	for (size_t i = 0; i < it->nlines; i++)
		proto_pack_int(e, it->offs[i]);
	proto_pack_array(e, (uint32_t)it->nlines);
	for (size_t i = 0; i < it->nlines; i++)
		proto_pack_double(e, it->times[i]);
}

void batch_pack(struct batch *b, struct proto_enc *e)
{
	proto_pack_array(e, (uint32_t)b->n);
	for (size_t i = 0; i < b->n; i++) {
		const struct batch_item *it = &b->items[i];
		proto_pack_array(e, 2);
		proto_pack_str(e, it->key);
		if (it->output && it->logname) {
			proto_pack_array(e, 2);
			proto_pack_str(e, it->logname);
			batch_pack_triple(e, it);
		} else if (it->output) {
			batch_pack_triple(e, it);
		} else if (it->text.len) {
			msgpack_sbuffer_write(&e->sb, it->text.ptr, it->text.len);
		} else {
			proto_pack_nil(e);
		}
	}
	batch_clear(b);
}
