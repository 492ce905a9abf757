/*
 * Unit tests for kiln-worker's pure parts: the line splitter (newline
 * sequences, partial lines, cuts, UTF-8 repair), the update batcher (merging,
 * weight budget, packing) and the env rules (${VAR}, lists, nil).
 */
#include "tap.h"
#include "common/buf.h"
#include "common/limits.h"
#include "common/xalloc.h"
#include "proto/msg.h"
#include "worker/env.h"
#include "worker/lines.h"

#include <errno.h>

struct got {
	struct buf all; /* lines joined, each followed by '|' instead of '\n' */
	int n;
	double last_t;
};

static void got_emit(void *ud, const char *line, size_t len, double t)
{
	struct got *g = ud;
	CHECK(len > 0 && line[len - 1] == '\n');
	CHECK(lines_utf8_valid(line, len));
	CHECK_INT(buf_add(&g->all, line, len - 1), 0);
	CHECK_INT(buf_addch(&g->all, '|'), 0);
	g->n++;
	g->last_t = t;
}

static char *split(const char *input, size_t max_line, bool finish)
{
	struct got g = {0};
	buf_init(&g.all, 1 << 20);
	struct lines l;
	lines_init(&l, max_line, got_emit, &g);
	lines_feed(&l, input, strlen(input), 1.0);
	if (finish)
		lines_finish(&l);
	lines_release(&l);
	return buf_detach(&g.all, NULL);
}

#define CHECK_SPLIT(in, max, fin, want)                                                            \
	do {                                                                                       \
		char *got_ = split(in, max, fin);                                                  \
		CHECK_STR(got_, want);                                                             \
		free(got_);                                                                        \
	} while (0)

TEST(splits_lines_and_holds_partial)
{
	CHECK_SPLIT("a\nbb\nccc", 100, false, "a|bb|");
	CHECK_SPLIT("a\nbb\nccc", 100, true, "a|bb|ccc|");
	CHECK_SPLIT("\n\n", 100, true, "||");
	CHECK_SPLIT("", 100, true, "");
}

TEST(normalises_newline_sequences)
{
	CHECK_SPLIT("a\r\nb\rc\n", 100, true, "a|b|c|");
	CHECK_SPLIT("x\033[uy\033[12;3Hz\033[2Jw\n", 100, true, "x|y|z|w|");
	CHECK_SPLIT("10%\b\b\b20%\n", 100, true, "10%|20%|");
	/* not newline sequences: kept as text */
	CHECK_SPLIT("a\033[1mb\n", 100, true, "a\033[1mb|");
	CHECK_SPLIT("a\033[3Jb\n", 100, true, "a\033[3Jb|");
	/* a trailing \r at the end becomes the end of the line */
	CHECK_SPLIT("done\r", 100, true, "done|");
}

TEST(crlf_split_across_chunks)
{
	struct got g = {0};
	buf_init(&g.all, 1000);
	struct lines l;
	lines_init(&l, 100, got_emit, &g);
	lines_feed(&l, "one\r", 4, 1.0);
	CHECK_INT(g.n, 0); /* \r held: it may be the start of \r\n */
	lines_feed(&l, "\ntwo\033[", 6, 2.0);
	CHECK_INT(g.n, 1);
	lines_feed(&l, "4;5fthree", 9, 3.0);
	lines_finish(&l);
	CHECK_STR(g.all.ptr, "one|two|three|");
	CHECK_INT(g.n, 3);
	lines_release(&l);
	buf_release(&g.all);
}

/* Output on the other stream ends a partial line (lines_cut_partial), so
 * lines keep the order they were written in; a pending \r is left alone. */
TEST(cut_partial_line_for_the_other_stream)
{
	struct got g = {0};
	buf_init(&g.all, 1000);
	struct lines l;
	lines_init(&l, 100, got_emit, &g);
	lines_cut_partial(&l); /* nothing held: nothing emitted */
	CHECK_INT(g.n, 0);
	lines_feed(&l, "half", 4, 1.0);
	lines_cut_partial(&l);
	CHECK_INT(g.n, 1);
	lines_feed(&l, "rest\r", 5, 2.0);
	lines_cut_partial(&l); /* "\r" may be the start of "\r\n" */
	CHECK_INT(g.n, 1);
	lines_feed(&l, "\nnext\n", 6, 3.0);
	lines_finish(&l);
	CHECK_STR(g.all.ptr, "half|rest|next|");
	lines_release(&l);
	buf_release(&g.all);
}

TEST(line_time_is_first_byte)
{
	struct got g = {0};
	buf_init(&g.all, 1000);
	struct lines l;
	lines_init(&l, 100, got_emit, &g);
	lines_feed(&l, "ab", 2, 5.0);
	lines_feed(&l, "c\n", 2, 7.0);
	CHECK(g.last_t == 5.0);
	lines_release(&l);
	buf_release(&g.all);
}

TEST(cuts_long_lines_at_utf8_boundaries)
{
	CHECK_SPLIT("abcdefghij\n", 4, true, "abcd|efgh|ij|");
	/* "é" is 2 bytes: a cut at 4 would split it, so it moves to the next line */
	CHECK_SPLIT("abc\xc3\xa9xyz\n", 4, true, "abc|\xc3\xa9xy|z|");
}

TEST(repairs_invalid_utf8)
{
	CHECK_SPLIT("a\xff"
		    "b\n",
		    100, true,
		    "a\xef\xbf\xbd"
		    "b|");
	CHECK_SPLIT("\xed\xa0\x80\n", 100, true, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd|");
	CHECK(lines_utf8_valid("h\xc3\xa9llo \xf0\x9f\x98\x80", 11));
	CHECK(!lines_utf8_valid("\xc0\xaf", 2));
	CHECK(!lines_utf8_valid("\xf4\x90\x80\x80", 4));
	CHECK(!lines_utf8_valid("\xe2\x82", 2));
}

/* ---- randomized comparison against the original byte-at-a-time splitter ----
 * The splitter was rewritten for speed (runs, direct emission from the chunk);
 * this is the original implementation, kept only here as the reference. */

struct old_lines {
	struct buf cur;
	char esc[24];
	size_t esc_len;
	bool in_bs;
	double cur_time;
	size_t max_line;
	lines_emit_fn emit;
	void *ud;
};

/* Length of the valid UTF-8 sequence at p (n bytes available), or 0. */
static size_t old_lines_utf8_seq(const unsigned char *p, size_t n)
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

static bool old_lines_utf8_valid(const char *p, size_t n)
{
	const unsigned char *u = (const unsigned char *)p;
	for (size_t i = 0; i < n;) {
		size_t k = old_lines_utf8_seq(u + i, n - i);
		if (!k)
			return false;
		i += k;
	}
	return true;
}

/* The reference: a failed append (over out's cap) fails the test. */
static void old_lines_utf8_repair(struct buf *out, const char *p, size_t n)
{
	const unsigned char *u = (const unsigned char *)p;
	size_t run = 0; /* start of the current valid run */
	size_t i = 0;
	while (i < n) {
		size_t k = old_lines_utf8_seq(u + i, n - i);
		if (k) {
			i += k;
			continue;
		}
		CHECK_INT(buf_add(out, p + run, i - run), 0);
		CHECK_INT(buf_add(out, "\xef\xbf\xbd", 3), 0);
		i++;
		run = i;
	}
	CHECK_INT(buf_add(out, p + run, n - run), 0);
}

/* ---- line splitter ---------------------------------------------------------- */

static void old_lines_init(struct old_lines *l, size_t max_line, lines_emit_fn emit, void *ud)
{
	memset(l, 0, sizeof(*l));
	if (max_line < 4)
		max_line = 4;
	l->max_line = max_line;
	buf_init(&l->cur, max_line + 8);
	l->emit = emit;
	l->ud = ud;
}

static void old_lines_release(struct old_lines *l)
{
	buf_release(&l->cur);
}

/* Emits cur[0..n) + '\n' and keeps the rest of cur as the next line's start. */
static void old_lines_emit_prefix(struct old_lines *l, size_t n, double t)
{
	struct buf out;
	buf_init(&out, n * 3 + 8);
	old_lines_utf8_repair(&out, l->cur.ptr, n);
	CHECK_INT(buf_addch(&out, '\n'), 0);
	l->emit(l->ud, out.ptr, out.len, l->cur.len ? l->cur_time : t);
	buf_release(&out);
	buf_consume(&l->cur, n);
	l->cur_time = t;
}

static void old_lines_newline(struct old_lines *l, double t)
{
	old_lines_emit_prefix(l, l->cur.len, t);
}

static void old_lines_put(struct old_lines *l, char c, double t)
{
	if (l->cur.len == 0)
		l->cur_time = t;
	CHECK_INT(buf_addch(&l->cur, c), 0);
	if (l->cur.len < l->max_line)
		return;
	/* cut, but not inside a UTF-8 sequence: move an incomplete tail to the next line */
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
	old_lines_emit_prefix(l, cut, t);
}

/* For an ESC sequence being matched: 1 complete, 0 could still match, -1 cannot. */
static int old_lines_esc_state(const char *s, size_t n)
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

static void old_lines_feed(struct old_lines *l, const void *data, size_t len, double t)
{
	const char *p = data;
	for (size_t i = 0; i < len; i++) {
		char c = p[i];
	again:
		if (l->esc_len) {
			if (l->esc[0] == '\r') {
				/* \r\n and \r followed by anything are both one newline */
				l->esc_len = 0;
				old_lines_newline(l, t);
				if (c == '\n')
					continue;
				goto again;
			}
			l->esc[l->esc_len++] = c;
			int st = old_lines_esc_state(l->esc, l->esc_len);
			if (st == 1) {
				l->esc_len = 0;
				old_lines_newline(l, t);
				continue;
			}
			if (st == 0 && l->esc_len < sizeof(l->esc) - 1)
				continue;
			/* not a newline sequence: its bytes are text, and c is looked at again */
			size_t n = l->esc_len - 1;
			l->esc_len = 0;
			for (size_t k = 0; k < n; k++)
				old_lines_put(l, l->esc[k], t);
			goto again;
		}
		if (c == '\b') {
			if (!l->in_bs)
				old_lines_newline(l, t);
			l->in_bs = true;
			continue;
		}
		l->in_bs = false;
		if (c == '\n')
			old_lines_newline(l, t);
		else if (c == '\r' || c == '\033') {
			l->esc[0] = c;
			l->esc_len = 1;
		} else
			old_lines_put(l, c, t);
	}
}

static void old_lines_finish(struct old_lines *l)
{
	double t = l->cur_time;
	if (l->esc_len) {
		if (l->esc[0] == '\r') {
			l->esc_len = 0;
			old_lines_newline(l, t);
		} else {
			size_t n = l->esc_len;
			l->esc_len = 0;
			for (size_t k = 0; k < n; k++)
				old_lines_put(l, l->esc[k], t);
		}
	}
	if (l->cur.len)
		old_lines_newline(l, t);
	l->in_bs = false;
}

struct rec {
	struct buf all; /* each line as "<time>:" + bytes */
	int n;
};

static void rec_emit(void *ud, const char *line, size_t len, double t)
{
	struct rec *r = ud;
	CHECK_INT(buf_addf(&r->all, "%g:", t), 0);
	CHECK_INT(buf_add(&r->all, line, len), 0);
	r->n++;
}

static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return (uint32_t)(rnd_state >> 11);
}

/* Random bytes weighted toward what the splitter treats specially. */
static size_t rnd_input(char *p, size_t cap)
{
	static const char *const pieces[] = {
		"\n",
		"\r",
		"\r\n",
		"\033",
		"\033[",
		"\033[u",
		"\033[2J",
		"\033[3J",
		"\033[12;3H",
		"\033[1;f",
		"\033[1;",
		"\033[12",
		"\b",
		"\b\b\b",
		"\t",
		"\xc3\xa9",
		"\xe2\x82\xac",
		"\xf0\x9f\x98\x80",
		"\xc3",
		"\xe2\x82",
		"\xf0\x9f",
		"\xff",
		"\x80",
		"\xed\xa0\x80",
		"\xc0\xaf",
		"\xf4\x90\x80\x80",
		"hello",
		"a",
		"\033[0000000000000000000000001;2H",
	};
	size_t n = rnd() % cap, i = 0;
	while (i < n) {
		uint32_t k = rnd() % 64;
		if (k < 29) {
			const char *s = pieces[k];
			size_t m = strlen(s);
			if (i + m > cap)
				break;
			memcpy(p + i, s, m);
			i += m;
		} else if (k < 34) {
			p[i++] = (char)(rnd() & 0xff);
		} else {
			size_t m = rnd() % (k < 60 ? 12 : 300);
			for (size_t j = 0; j < m && i < cap; j++)
				p[i++] = (char)('a' + rnd() % 26);
		}
	}
	return i;
}

TEST(same_as_original_splitter)
{
	static char in[4096];
	int bad = 0;
	for (int iter = 0; iter < 20000 && bad < 3; iter++) {
		size_t n = rnd_input(in, iter % 10 == 0 ? sizeof(in) : 200);
		size_t max_line = 4 + rnd() % (iter % 3 == 0 ? 8 : 100);
		struct rec a = {0}, b = {0};
		buf_init(&a.all, 1 << 22);
		buf_init(&b.all, 1 << 22);
		struct lines l;
		struct old_lines o;
		lines_init(&l, max_line, rec_emit, &a);
		old_lines_init(&o, max_line, rec_emit, &b);
		size_t off = 0;
		double t = 1;
		while (off < n) {
			size_t m = rnd() % 4 == 0 ? 1 : rnd() % (n - off + 1);
			if (m > n - off)
				m = n - off;
			lines_feed(&l, in + off, m, t);
			old_lines_feed(&o, in + off, m, t);
			off += m;
			t += 1;
		}
		lines_finish(&l);
		old_lines_finish(&o);
		if (a.n != b.n || a.all.len != b.all.len ||
		    memcmp(a.all.ptr, b.all.ptr, a.all.len)) {
			TAP_FAIL("iteration %d (max_line %zu, %zu bytes): %d vs %d lines", iter,
				 max_line, n, a.n, b.n);
			bad++;
		}
		lines_release(&l);
		old_lines_release(&o);
		buf_release(&a.all);
		buf_release(&b.all);
	}
	CHECK_INT(bad, 0);
}

TEST(utf8_fast_paths_agree)
{
	static char in[512];
	for (int iter = 0; iter < 20000; iter++) {
		size_t n = rnd_input(in, sizeof(in));
		CHECK(lines_utf8_valid(in, n) == old_lines_utf8_valid(in, n));
		struct buf a, b;
		buf_init(&a, 1 << 16);
		buf_init(&b, 1 << 16);
		CHECK_INT(lines_utf8_repair(&a, in, n), 0);
		old_lines_utf8_repair(&b, in, n);
		CHECK(a.len == b.len && memcmp(a.ptr, b.ptr, a.len) == 0);
		buf_release(&a);
		buf_release(&b);
	}
}

/* ---- batcher ---- */

struct flushes {
	struct batch *b;
	int n;
	struct proto_enc e[8];
};

static void on_flush(void *ud)
{
	struct flushes *f = ud;
	if (f->n < 8) {
		proto_enc_init(&f->e[f->n]);
		batch_pack(f->b, &f->e[f->n]);
	}
	f->n++;
}

static const msgpack_object *decode_args(struct proto_enc *e, msgpack_unpacked *up)
{
	msgpack_unpacked_init(up);
	size_t off = 0;
	if (msgpack_unpack_next(up, e->sb.data, e->sb.size, &off) != MSGPACK_UNPACK_SUCCESS)
		return NULL;
	return &up->data;
}

TEST(batch_merges_and_packs)
{
	struct batch b;
	struct flushes f = {.b = &b};
	batch_init(&b, 65536, on_flush, &f);
	batch_add_text(&b, "header", "cmd\n in dir /x\n", 1.0);
	batch_add_line(&b, "stdout", NULL, "out1\n", 5, 2.0);
	batch_add_line(&b, "stdout", NULL, "out2\n", 5, 3.0);
	batch_add_line(&b, "stderr", NULL, "err\n", 4, 4.0);
	batch_add_line(&b, "log", "side", "a\n", 2, 5.0);
	batch_add_int(&b, "rc", 0);
	batch_add_double(&b, "elapsed", 0.5);
	CHECK(!batch_empty(&b));
	batch_flush(&b);
	CHECK(batch_empty(&b));
	CHECK_INT(f.n, 1);

	msgpack_unpacked up;
	const msgpack_object *a = decode_args(&f.e[0], &up);
	CHECK(a && a->type == MSGPACK_OBJECT_ARRAY && a->via.array.size == 6);
	if (a && a->via.array.size == 6) {
		const msgpack_object *it = a->via.array.ptr;
		struct str s;
		/* header triple */
		CHECK(proto_obj_str(&it[0].via.array.ptr[0], &s) && str_eq(s, "header"));
		const msgpack_object *tri = &it[0].via.array.ptr[1];
		CHECK(proto_obj_str(&tri->via.array.ptr[0], &s) && str_eq(s, "cmd\n in dir /x\n"));
		CHECK_INT(tri->via.array.ptr[1].via.array.size, 2);
		CHECK_INT(tri->via.array.ptr[1].via.array.ptr[0].via.u64, 3);
		CHECK_INT(tri->via.array.ptr[1].via.array.ptr[1].via.u64, 14);
		/* stdout merged */
		tri = &it[1].via.array.ptr[1];
		CHECK(proto_obj_str(&tri->via.array.ptr[0], &s) && str_eq(s, "out1\nout2\n"));
		CHECK_INT(tri->via.array.ptr[2].via.array.size, 2);
		CHECK(tri->via.array.ptr[2].via.array.ptr[1].via.f64 == 3.0);
		/* log: [name, triple] */
		const msgpack_object *lg = &it[3].via.array.ptr[1];
		CHECK(proto_obj_str(&lg->via.array.ptr[0], &s) && str_eq(s, "side"));
		int64_t rc = -1;
		CHECK(proto_obj_int(&it[4].via.array.ptr[1], &rc) && rc == 0);
		double el = 0;
		CHECK(proto_obj_double(&it[5].via.array.ptr[1], &el) && el == 0.5);
	}
	msgpack_unpacked_destroy(&up);
	proto_enc_release(&f.e[0]);
	batch_release(&b);
}

TEST(batch_respects_weight)
{
	struct batch b;
	struct flushes f = {.b = &b};
	batch_init(&b, 100, on_flush, &f);
	char line[40];
	memset(line, 'x', sizeof(line));
	line[39] = '\n';
	/* each line weighs 56: two do not fit in 100 */
	batch_add_line(&b, "stdout", NULL, line, 40, 1.0);
	CHECK_INT(f.n, 0);
	batch_add_line(&b, "stdout", NULL, line, 40, 1.0);
	CHECK_INT(f.n, 1);
	batch_add_line(&b, "stdout", NULL, line, 40, 1.0);
	CHECK_INT(f.n, 2);
	for (int i = 0; i < f.n && i < 8; i++) {
		CHECK(f.e[i].sb.size <= 100);
		proto_enc_release(&f.e[i]);
	}
	batch_release(&b);
}

/* ---- env ---- */

TEST(env_rules)
{
	char *base_v[] = {"HOME=/home/k", "PATH=/bin:/usr/bin", "DROP=1", "PYTHONPATH=/py", NULL};
	struct env base, e;
	env_init(&base, base_v);
	env_init(&e, base_v);
	CHECK_STR(env_get(&e, "HOME"), "/home/k");

	struct proto_enc enc;
	proto_enc_init(&enc);
	proto_pack_map(&enc, 5);
	proto_pack_str(&enc, "A");
	proto_pack_str(&enc, "x${HOME}y${NOPE}z$HOME");
	proto_pack_str(&enc, "L");
	proto_pack_array(&enc, 2);
	proto_pack_str(&enc, "/p");
	proto_pack_str(&enc, "${HOME}/q");
	proto_pack_str(&enc, "DROP");
	proto_pack_nil(&enc);
	proto_pack_str(&enc, "PYTHONPATH");
	proto_pack_str(&enc, "/mine");
	proto_pack_str(&enc, "PATH");
	proto_pack_str(&enc, "/opt/bin:${PATH}");
	msgpack_unpacked up;
	const msgpack_object *m = decode_args(&enc, &up);
	CHECK_INT(env_apply(&e, m, &base), 0);
	CHECK_STR(env_get(&e, "A"), "x/home/kyz$HOME");
	CHECK_STR(env_get(&e, "L"), "/p:/home/k/q");
	CHECK(env_get(&e, "DROP") == NULL);
	CHECK_STR(env_get(&e, "PYTHONPATH"), "/mine:/py");
	CHECK_STR(env_get(&e, "PATH"), "/opt/bin:/bin:/usr/bin");
	CHECK(e.v[e.n] == NULL);
	env_sort(&e);
	CHECK(strncmp(e.v[0], "A=", 2) == 0);
	msgpack_unpacked_destroy(&up);

	proto_enc_reset(&enc);
	proto_pack_array(&enc, 0);
	m = decode_args(&enc, &up);
	CHECK_INT(env_apply(&e, m, &base), -EINVAL);
	msgpack_unpacked_destroy(&up);
	proto_enc_release(&enc);
	env_release(&e);
	env_release(&base);
}

/* Values past their caps are refused whole, never passed on cut. */
TEST(caps_refuse_whole)
{
	/* a repaired text over the buffer's cap */
	struct buf b;
	buf_init(&b, 8);
	CHECK_INT(lines_utf8_repair(&b, "\xff\xff\xff\xff", 4), -E2BIG);
	CHECK_INT(b.len, 0);
	buf_release(&b);
	/* an expansion over 1 MiB: env_expand NULL, env_apply -E2BIG */
	size_t big = (1u << 20) - 4;
	char *v = xmalloc(big + 1);
	memset(v, 'v', big);
	v[big] = '\0';
	char *lookup_v[] = {NULL, NULL};
	lookup_v[0] = xasprintf("BIG=%s", v);
	struct env lookup;
	env_init(&lookup, lookup_v);
	CHECK(env_expand("${BIG}${BIG}", 12, &lookup) == NULL);
	char *ok = env_expand("${BIG}", 6, &lookup);
	CHECK(ok && strlen(ok) == big);
	free(ok);
	struct env e;
	env_init(&e, lookup_v);
	struct proto_enc enc;
	proto_enc_init(&enc);
	proto_pack_map(&enc, 1);
	proto_pack_str(&enc, "X");
	proto_pack_str(&enc, "${BIG}${BIG}");
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	CHECK(msgpack_unpack_next(&up, enc.sb.data, enc.sb.size, NULL) == MSGPACK_UNPACK_SUCCESS);
	CHECK_INT(env_apply(&e, &up.data, &lookup), -E2BIG);
	CHECK(env_get(&e, "X") == NULL);
	msgpack_unpacked_destroy(&up);
	proto_enc_release(&enc);
	env_release(&e);
	env_release(&lookup);
	free(lookup_v[0]);
	free(v);
	/* a packed value over the frame cap adds nothing */
	struct batch bt;
	batch_init(&bt, 1u << 16, NULL, NULL);
	size_t huge = KILN_MAX_WS_FRAME + 1;
	char *h = xcalloc(1, huge);
	CHECK_INT(batch_add_packed(&bt, "files", h, huge), -E2BIG);
	CHECK(batch_empty(&bt));
	batch_release(&bt);
	free(h);
}

int main(void)
{
	RUN(splits_lines_and_holds_partial);
	RUN(normalises_newline_sequences);
	RUN(crlf_split_across_chunks);
	RUN(cut_partial_line_for_the_other_stream);
	RUN(line_time_is_first_byte);
	RUN(cuts_long_lines_at_utf8_boundaries);
	RUN(repairs_invalid_utf8);
	RUN(same_as_original_splitter);
	RUN(utf8_fast_paths_agree);
	RUN(batch_merges_and_packs);
	RUN(batch_respects_weight);
	RUN(env_rules);
	RUN(caps_refuse_whole);
	return tap_done();
}
