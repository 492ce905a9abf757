/*
 * Unit tests for kiln-worker's pure parts: the line splitter (newline
 * sequences, partial lines, cuts, UTF-8 repair), the update batcher (merging,
 * weight budget, packing) and the env rules (${VAR}, lists, nil).
 */
#include "tap.h"
#include "common/buf.h"
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
	(void)buf_add(&g->all, line, len - 1);
	(void)buf_addch(&g->all, '|');
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
	CHECK_SPLIT("a\xff" "b\n", 100, true, "a\xef\xbf\xbd" "b|");
	CHECK_SPLIT("\xed\xa0\x80\n", 100, true, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd|");
	CHECK(lines_utf8_valid("h\xc3\xa9llo \xf0\x9f\x98\x80", 11));
	CHECK(!lines_utf8_valid("\xc0\xaf", 2));
	CHECK(!lines_utf8_valid("\xf4\x90\x80\x80", 4));
	CHECK(!lines_utf8_valid("\xe2\x82", 2));
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

int main(void)
{
	RUN(splits_lines_and_holds_partial);
	RUN(normalises_newline_sequences);
	RUN(crlf_split_across_chunks);
	RUN(line_time_is_first_byte);
	RUN(cuts_long_lines_at_utf8_boundaries);
	RUN(repairs_invalid_utf8);
	RUN(batch_merges_and_packs);
	RUN(batch_respects_weight);
	RUN(env_rules);
	return tap_done();
}
