/*
 * Unit tests for src/proto: strict message decoding (the captured bytes of
 * PROTOCOL.md §4.2, malformed and hostile inputs), accessors, encoders, and
 * the request/response session, and the WebSocket send queue.
 */
#include "tap.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/xalloc.h"
#include "proto/msg.h"
#include "proto/sendq.h"
#include "proto/session.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

/* The master's first message, captured (PROTOCOL.md §4.2). */
static const uint8_t captured_print[] = {0x83, 0xa2, 'o', 'p', 0xa5, 'p', 'r', 'i',  'n',  't',
					 0xa7, 'm',  'e', 's', 's',  'a', 'g', 'e',  0xa8, 'a',
					 't',  't',  'a', 'c', 'h',  'e', 'd', 0xaa, 's',  'e',
					 'q',  '_',  'n', 'u', 'm',  'b', 'e', 'r',  0x00};
/* The worker's 33-byte reply to it. */
static const uint8_t captured_reply[] = {
	0x83, 0xa2, 'o', 'p', 0xa8, 'r', 'e', 's',  'p',  'o', 'n', 's', 'e', 0xaa, 's', 'e', 'q',
	'_',  'n',  'u', 'm', 'b',  'e', 'r', 0x00, 0xa6, 'r', 'e', 's', 'u', 'l',  't', 0xc0};

TEST(decodes_captured_print)
{
	struct proto_msg m;
	CHECK_INT(proto_msg_decode(captured_print, sizeof(captured_print), &m), 0);
	CHECK(str_eq(m.op, "print"));
	CHECK_INT(m.seq, 0);
	char *msg = proto_obj_strdup(proto_map_get(m.root, "message"));
	CHECK_STR(msg, "attached");
	free(msg);
	CHECK(proto_map_get(m.root, "nope") == NULL);
	proto_msg_release(&m);
}

TEST(encodes_reply_byte_exact)
{
	struct proto_enc e;
	proto_enc_init(&e);
	proto_enc_response_nil(&e, 0);
	CHECK_INT(e.sb.size, sizeof(captured_reply));
	CHECK(e.sb.size == sizeof(captured_reply) &&
	      memcmp(e.sb.data, captured_reply, sizeof(captured_reply)) == 0);
	proto_enc_release(&e);
}

TEST(error_response_round_trips)
{
	struct proto_enc e;
	proto_enc_init(&e);
	proto_enc_response_error(&e, 77, "Command foo does not exist.");
	struct proto_msg m;
	CHECK_INT(proto_msg_decode(e.sb.data, e.sb.size, &m), 0);
	CHECK(str_eq(m.op, "response"));
	CHECK_INT(m.seq, 77);
	bool exc = false;
	CHECK(proto_obj_bool(proto_map_get(m.root, "is_exception"), &exc) && exc);
	struct str s;
	CHECK(proto_obj_str(proto_map_get(m.root, "result"), &s) &&
	      s.len == strlen("Command foo does not exist."));
	proto_msg_release(&m);
	proto_enc_release(&e);
}

static int decode_status(const void *p, size_t n)
{
	struct proto_msg m;
	int r = proto_msg_decode(p, n, &m);
	if (r == 0)
		proto_msg_release(&m);
	return r;
}

TEST(rejects_malformed)
{
	/* truncated */
	CHECK_INT(decode_status(captured_print, sizeof(captured_print) - 1), KILN_EPROTO);
	/* trailing byte */
	uint8_t t[sizeof(captured_print) + 1];
	memcpy(t, captured_print, sizeof(captured_print));
	t[sizeof(captured_print)] = 0xc0;
	CHECK_INT(decode_status(t, sizeof(t)), KILN_EPROTO);
	/* empty, not a map, reserved byte */
	CHECK_INT(decode_status("", 0), KILN_EPROTO);
	CHECK_INT(decode_status("\x91\x01", 2), KILN_EPROTO);
	CHECK_INT(decode_status("\xc1", 1), KILN_EPROTO);
	/* map with op but no seq_number */
	CHECK_INT(decode_status("\x81\xa2op\xa1x", 6), KILN_EPROTO);
	/* op not a str (bin) */
	CHECK_INT(decode_status("\x82\xa2op\xc4\x01x\xaaseq_number\x00", 19), KILN_EPROTO);
	/* seq_number not an int */
	CHECK_INT(decode_status("\x82\xa2op\xa1x\xaaseq_number\xc0", 18), KILN_EPROTO);
	/* seq_number negative is an int: accepted */
	CHECK_INT(decode_status("\x82\xa2op\xa1x\xaaseq_number\xff", 18), 0);
	/* hostile: array32 claiming 4G elements, map32 too */
	CHECK_INT(decode_status("\x82\xa2op\xa1x\xaaseq_number\xdd\xff\xff\xff\xff", 22),
		  KILN_EPROTO);
	CHECK_INT(decode_status("\xdf\xff\xff\xff\xff\xa2op", 8), KILN_EPROTO);
	/* str32 claiming more than there is */
	CHECK_INT(decode_status("\x81\xa2op\xdb\x7f\xff\xff\xff", 9), KILN_EPROTO);
	/* over the frame cap */
	CHECK_INT(decode_status(captured_print, (size_t)KILN_MAX_WS_FRAME + 1), KILN_EPROTO);
}

static size_t nested(uint8_t *p, int depth)
{
	/* {op:"x", seq_number:0, a:[[[...]]]} with 'depth' containers in total */
	size_t n = 0;
	memcpy(p,
	       "\x83\xa2op\xa1x\xaaseq_number\x00\xa1"
	       "a",
	       20);
	n = 20;
	for (int i = 1; i < depth; i++)
		p[n++] = 0x91;
	p[n++] = 0x00;
	return n;
}

TEST(depth_cap)
{
	uint8_t buf[200];
	size_t n = nested(buf, KILN_MAX_MSGPACK_DEPTH);
	CHECK_INT(decode_status(buf, n), 0);
	n = nested(buf, KILN_MAX_MSGPACK_DEPTH + 1);
	CHECK_INT(decode_status(buf, n), KILN_EPROTO);
}

/* {op:"x", seq_number:0, a:<array32 of n nils>} into p; returns its length. */
static size_t nils_message(uint8_t *p, uint32_t n)
{
	memcpy(p,
	       "\x83\xa2op\xa1x\xaaseq_number\x00\xa1"
	       "a\xdd",
	       21);
	p[21] = (uint8_t)(n >> 24);
	p[22] = (uint8_t)(n >> 16);
	p[23] = (uint8_t)(n >> 8);
	p[24] = (uint8_t)n;
	memset(p + 25, 0xc0, n);
	return 25 + (size_t)n;
}

/* A /proc/self/status field in kB, or -1. */
static long proc_status_kb(const char *field)
{
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		return -1;
	char line[256];
	long v = -1;
	size_t flen = strlen(field);
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, field, flen) == 0 && line[flen] == ':')
			v = strtol(line + flen + 1, NULL, 10);
	fclose(f);
	return v;
}

/* Resets the peak RSS (VmHWM) to the current RSS (Linux >= 4.0). */
static bool peak_rss_reset(void)
{
	int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	bool ok = write(fd, "5", 1) == 1;
	close(fd);
	return ok;
}

TEST(decoded_size_cap)
{
	/* One frame-sized message of 1-byte nils: msgpack-c would build a
	 * 24-byte object per byte (192 MiB).  It must be refused before that. */
	size_t frame = KILN_MAX_WS_FRAME;
	uint8_t *big = xmalloc(frame);
	size_t n = nils_message(big, (uint32_t)(frame - 25));
	CHECK_INT(n, frame);

	bool measured = peak_rss_reset();
	long before = proc_status_kb("VmRSS");
	CHECK_INT(decode_status(big, n), KILN_EPROTO);
	long peak = proc_status_kb("VmHWM");
	if (measured && before > 0 && peak > 0) {
		long grown_kb = peak - before;
		if (grown_kb > 16 * 1024)
			TAP_FAIL("decoding a refused message raised peak RSS by %ld kB", grown_kb);
	} else {
		printf("# peak RSS not measurable here (no /proc/self/clear_refs)\n");
	}

	/* Just under the cap still decodes; one past it does not. */
	uint32_t max_objects = (uint32_t)(KILN_MAX_MSGPACK_DECODED / sizeof(msgpack_object));
	/* the top map's 3 pairs are 6 objects */
	n = nils_message(big, max_objects - 6);
	CHECK_INT(decode_status(big, n), 0);
	n = nils_message(big, max_objects - 5);
	CHECK_INT(decode_status(big, n), KILN_EPROTO);
	free(big);
}

TEST(accessors_and_packers)
{
	struct proto_enc e;
	proto_enc_init(&e);
	proto_pack_map(&e, 10);
	proto_pack_str(&e, "op");
	proto_pack_str(&e, "update");
	proto_pack_str(&e, "seq_number");
	proto_pack_int(&e, 1234567890123LL);
	proto_pack_str(&e, "neg");
	proto_pack_int(&e, -5);
	proto_pack_str(&e, "f");
	proto_pack_double(&e, 1.5);
	proto_pack_str(&e, "b");
	proto_pack_bool(&e, true);
	proto_pack_str(&e, "n");
	proto_pack_nil(&e);
	proto_pack_str(&e, "bin");
	proto_pack_bin(&e, "a\0b", 3);
	proto_pack_str(&e, "arr");
	proto_pack_array(&e, 2);
	proto_pack_strn(&e, "xyz", 2);
	proto_pack_str(&e, NULL);
	proto_pack_str(&e, "big");
	msgpack_pack_uint64(&e.pk, UINT64_MAX);
	proto_pack_str(&e, "");
	proto_pack_int(&e, 9);

	struct proto_msg m;
	CHECK_INT(proto_msg_decode(e.sb.data, e.sb.size, &m), 0);
	CHECK_INT(m.seq, 1234567890123LL);
	int64_t i = 0;
	double d = 0;
	bool b = false;
	struct str s;
	CHECK(proto_obj_int(proto_map_get(m.root, "neg"), &i) && i == -5);
	CHECK(proto_obj_double(proto_map_get(m.root, "f"), &d) && d == 1.5);
	CHECK(proto_obj_double(proto_map_get(m.root, "neg"), &d) && d == -5.0);
	CHECK(!proto_obj_int(proto_map_get(m.root, "f"), &i));
	CHECK(proto_obj_bool(proto_map_get(m.root, "b"), &b) && b);
	CHECK(proto_obj_nil(proto_map_get(m.root, "n")));
	CHECK(proto_obj_nil(proto_map_get(m.root, "absent")));
	CHECK(!proto_obj_nil(proto_map_get(m.root, "b")));
	CHECK(proto_obj_str(proto_map_get(m.root, "bin"), &s) && s.len == 3 && s.p[2] == 'b');
	CHECK(!proto_obj_int(proto_map_get(m.root, "big"), &i));
	CHECK(proto_obj_int(proto_map_get(m.root, ""), &i) && i == 9);
	const msgpack_object *arr = proto_map_get(m.root, "arr");
	CHECK(arr && arr->type == MSGPACK_OBJECT_ARRAY && arr->via.array.size == 2);
	if (arr && arr->via.array.size == 2) {
		char *x = proto_obj_strdup(&arr->via.array.ptr[0]);
		CHECK_STR(x, "xy");
		free(x);
		CHECK(proto_obj_nil(&arr->via.array.ptr[1]));
		CHECK(proto_obj_strdup(&arr->via.array.ptr[1]) == NULL);
	}
	CHECK(proto_map_get(arr, "x") == NULL);
	CHECK(proto_map_get(NULL, "x") == NULL);

	/* copying the root reproduces the same bytes */
	struct proto_enc e2;
	proto_enc_init(&e2);
	proto_pack_object(&e2, m.root);
	CHECK(e2.sb.size == e.sb.size && memcmp(e2.sb.data, e.sb.data, e.sb.size) == 0);
	proto_enc_reset(&e2);
	CHECK_INT(e2.sb.size, 0);
	proto_enc_release(&e2);

	/* the struct may be moved: root lives in the zone */
	struct proto_msg moved = m;
	memset(&m, 0xff, sizeof(m));
	CHECK(proto_obj_int(proto_map_get(moved.root, "neg"), &i) && i == -5);
	proto_msg_release(&moved);
	proto_enc_release(&e);
}

struct replies {
	int calls;
	int last_status;
	int64_t last_int;
	int order[8];
};

static void on_reply(void *ud, int status, const msgpack_object *result)
{
	struct replies *r = ud;
	r->last_status = status;
	r->last_int = -1;
	if (r->calls < 8)
		r->order[r->calls] = status;
	r->calls++;
	if (status == 0)
		(void)proto_obj_int(result, &r->last_int);
	if (status != 0 && status != KILN_EPROTO && result != NULL)
		r->last_int = -999; /* must be NULL on loss */
}

static void feed_response(struct proto_session *s, int64_t seq, int result, bool exc, int want)
{
	struct proto_enc e;
	proto_enc_init(&e);
	if (exc) {
		proto_enc_response_error(&e, seq, "boom");
	} else {
		proto_pack_map(&e, 3);
		proto_pack_str(&e, "op");
		proto_pack_str(&e, "response");
		proto_pack_str(&e, "seq_number");
		proto_pack_int(&e, seq);
		proto_pack_str(&e, "result");
		proto_pack_int(&e, result);
	}
	struct proto_msg m;
	CHECK_INT(proto_msg_decode(e.sb.data, e.sb.size, &m), 0);
	CHECK_INT(proto_session_handle_response(s, &m), want);
	proto_msg_release(&m);
	proto_enc_release(&e);
}

TEST(session_correlates)
{
	struct proto_session *s = proto_session_new();
	struct replies a = {0}, b = {0}, c = {0};
	struct proto_enc e;
	proto_enc_init(&e);

	CHECK_INT(proto_session_request(s, &e, "update", 1, on_reply, &a), 0);
	proto_pack_str(&e, "command_id");
	proto_pack_str(&e, "3");
	struct proto_msg m;
	CHECK_INT(proto_msg_decode(e.sb.data, e.sb.size, &m), 0);
	CHECK(str_eq(m.op, "update"));
	CHECK_INT(m.seq, 0);
	proto_msg_release(&m);
	proto_enc_reset(&e);

	CHECK_INT(proto_session_request(s, &e, "complete", 0, on_reply, &b), 1);
	proto_enc_reset(&e);
	CHECK_INT(proto_session_request(s, &e, "x", 0, on_reply, &c), 2);
	CHECK_INT(proto_session_pending(s), 3);

	/* out of order */
	feed_response(s, 1, 42, false, 0);
	CHECK_INT(b.calls, 1);
	CHECK_INT(b.last_status, 0);
	CHECK_INT(b.last_int, 42);
	feed_response(s, 1, 42, false, KILN_EPROTO); /* already answered */
	feed_response(s, 99, 0, false, KILN_EPROTO);
	feed_response(s, 0, 0, true, 0);
	CHECK_INT(a.calls, 1);
	CHECK_INT(a.last_status, KILN_EPROTO);
	CHECK_INT(proto_session_pending(s), 1);

	proto_session_fail_all(s, -ECONNRESET);
	CHECK_INT(c.calls, 1);
	CHECK_INT(c.last_status, -ECONNRESET);
	CHECK_INT(c.last_int, -1);
	CHECK_INT(proto_session_pending(s), 0);
	CHECK_INT(b.calls, 1);
	CHECK_INT(proto_session_next_seq(s), 3);

	proto_enc_release(&e);
	proto_session_free(s);
	proto_session_free(NULL);
}

TEST(session_caps_pending)
{
	struct proto_session *s = proto_session_new();
	struct replies r = {0};
	struct proto_enc e;
	proto_enc_init(&e);
	for (int i = 0; i < KILN_MAX_PENDING_REQUESTS; i++) {
		proto_enc_reset(&e);
		CHECK_INT(proto_session_request(s, &e, "print", 0, on_reply, &r), i);
	}
	proto_enc_reset(&e);
	CHECK_INT(proto_session_request(s, &e, "print", 0, on_reply, &r), -EBUSY);
	CHECK_INT(e.sb.size, 0);
	/* answer one in the middle, then one more fits */
	feed_response(s, 100, 1, false, 0);
	CHECK_INT(proto_session_request(s, &e, "print", 0, on_reply, &r),
		  KILN_MAX_PENDING_REQUESTS);
	proto_session_fail_all(s, KILN_ETIMEOUT);
	CHECK_INT(r.calls, KILN_MAX_PENDING_REQUESTS + 1);
	proto_enc_release(&e);
	proto_session_free(s);
}

static struct proto_session *reentrant_s;
static int reentrant_calls;

static void on_reply_reenter(void *ud, int status, const msgpack_object *result)
{
	struct proto_enc e;
	reentrant_calls++;
	proto_enc_init(&e);
	if (reentrant_calls == 1)
		(void)proto_session_request(reentrant_s, &e, "again", 0, on_reply_reenter, NULL);
	proto_enc_release(&e);
}

TEST(session_reentrant_fail_all)
{
	reentrant_s = proto_session_new();
	struct proto_enc e;
	proto_enc_init(&e);
	(void)proto_session_request(reentrant_s, &e, "a", 0, on_reply_reenter, NULL);
	proto_session_fail_all(reentrant_s, -EPIPE);
	CHECK_INT(reentrant_calls, 1);
	CHECK_INT(proto_session_pending(reentrant_s), 1); /* started from the callback */
	proto_session_fail_all(reentrant_s, -EPIPE);
	CHECK_INT(reentrant_calls, 2);
	proto_enc_release(&e);
	proto_session_free(reentrant_s);
}

/* The payloads in queue order, "a|bb|c", for order checks. */
static void sendq_contents(const struct proto_sendq *q, char *out, size_t outlen)
{
	size_t n = 0;
	out[0] = '\0';
	for (struct proto_sendq_msg *m = proto_sendq_peek(q); m; m = m->next) {
		int k = snprintf(out + n, outlen - n, "%s%.*s", n ? "|" : "", (int)m->len,
				 (const char *)proto_sendq_payload(q, m));
		if (k < 0 || (size_t)k >= outlen - n)
			return;
		n += (size_t)k;
	}
}

TEST(sendq_keeps_order_and_headroom)
{
	struct proto_sendq q;
	char s[64];
	proto_sendq_init(&q, 100, 16);
	CHECK(proto_sendq_empty(&q));
	CHECK(proto_sendq_peek(&q) == NULL);
	CHECK_INT(proto_sendq_push(&q, "a", 1, 0), 0);
	CHECK_INT(proto_sendq_push(&q, "bb", 2, 0), 0);
	CHECK_INT(proto_sendq_push(&q, "", 0, 0), 0); /* an empty message is a message */
	CHECK_INT(proto_sendq_push(&q, "ccc", 3, 0), 0);
	CHECK_INT(q.queued, 6);
	sendq_contents(&q, s, sizeof(s));
	CHECK_STR(s, "a|bb||ccc");
	/* the headroom in front of the payload is the caller's to write (lws frames there) */
	struct proto_sendq_msg *m = proto_sendq_peek(&q);
	unsigned char *p = proto_sendq_payload(&q, m);
	CHECK(p == m->data + 16);
	memset(p - 16, 0xAA, 16);
	CHECK_INT(p[0], 'a');
	proto_sendq_shift(&q);
	CHECK_INT(q.queued, 5);
	sendq_contents(&q, s, sizeof(s));
	CHECK_STR(s, "bb||ccc");
	proto_sendq_shift(&q);
	proto_sendq_shift(&q);
	proto_sendq_shift(&q);
	CHECK(proto_sendq_empty(&q));
	CHECK(q.tail == NULL);
	CHECK_INT(q.queued, 0);
	proto_sendq_shift(&q); /* no-op when empty */
	/* the tail is right after emptying: a new message is found again */
	CHECK_INT(proto_sendq_push(&q, "d", 1, 0), 0);
	sendq_contents(&q, s, sizeof(s));
	CHECK_STR(s, "d");
	proto_sendq_release(&q);
}

TEST(sendq_cap)
{
	struct proto_sendq q;
	proto_sendq_init(&q, 10, 4);
	CHECK_INT(proto_sendq_push(&q, "0123456789x", 11, 0), -ENOBUFS); /* alone over the cap */
	CHECK(proto_sendq_empty(&q));
	CHECK_INT(proto_sendq_push(&q, "012345", 6, 0), 0);
	CHECK_INT(proto_sendq_push(&q, "01234", 5, PROTO_SENDQ_DROPPABLE), -ENOBUFS);
	CHECK_INT(q.queued, 6); /* nothing of the refused one counted */
	CHECK_INT(q.queued_droppable, 0);
	CHECK_INT(proto_sendq_push(&q, "0123", 4, 0), 0); /* exactly at the cap */
	CHECK_INT(q.queued, 10);
	CHECK_INT(proto_sendq_push(&q, "", 0, 0), 0);
	CHECK_INT(proto_sendq_push(&q, "x", 1, 0), -ENOBUFS);
	proto_sendq_shift(&q); /* written: room again */
	CHECK_INT(proto_sendq_push(&q, "x", 1, 0), 0);
	CHECK_INT(q.queued, 5);
	proto_sendq_release(&q);

	/* no cap of its own (the worker's: backpressure bounds it) */
	proto_sendq_init(&q, SIZE_MAX, 16);
	CHECK_INT(proto_sendq_push(&q, "abc", 3, 0), 0);
	CHECK_INT(proto_sendq_push(&q, "abc", SIZE_MAX - 2, 0), -ENOBUFS);  /* queued would wrap */
	CHECK_INT(proto_sendq_push(&q, "abc", SIZE_MAX - 20, 0), -ENOBUFS); /* size would wrap */
	CHECK_INT(q.queued, 3);
	proto_sendq_release(&q);
}

/* A message filled in place: pushed without a copy, its lowered len counted,
 * flags kept (PROTO_SENDQ_FRAMED), and refused past the cap (then still the
 * caller's to free). */
TEST(sendq_message_filled_in_place)
{
	struct proto_sendq q;
	proto_sendq_init(&q, 10, 4);
	struct proto_sendq_msg *m = proto_sendq_msg_new(&q, 8);
	unsigned char *p = proto_sendq_payload(&q, m);
	memcpy(p, "abcdef", 6);
	m->len = 6;
	CHECK_INT(proto_sendq_push_msg(&q, m, PROTO_SENDQ_FRAMED), 0);
	CHECK_INT(q.queued, 6);
	struct proto_sendq_msg *big = proto_sendq_msg_new(&q, 5);
	CHECK_INT(proto_sendq_push_msg(&q, big, 0), -ENOBUFS);
	CHECK_INT(q.queued, 6);
	free(big);
	struct proto_sendq_msg *h = proto_sendq_peek(&q);
	CHECK(h == m);
	CHECK(proto_sendq_payload(&q, h) == p && !memcmp(p, "abcdef", 6));
	CHECK(h->flags & PROTO_SENDQ_FRAMED);
	proto_sendq_shift(&q);
	CHECK(proto_sendq_empty(&q));
	CHECK_INT(q.queued, 0);
	proto_sendq_release(&q);
}

TEST(sendq_droppable_accounting_and_discard)
{
	struct proto_sendq q;
	char s[64];
	proto_sendq_init(&q, 100, 8);
	CHECK_INT(proto_sendq_push(&q, "d1", 2, PROTO_SENDQ_DROPPABLE), 0);
	CHECK_INT(proto_sendq_push(&q, "k1", 2, 0), 0);
	CHECK_INT(proto_sendq_push(&q, "d22", 3, PROTO_SENDQ_DROPPABLE), 0);
	CHECK_INT(proto_sendq_push(&q, "k22", 3, 0), 0);
	CHECK_INT(proto_sendq_push(&q, "d333", 4, PROTO_SENDQ_DROPPABLE), 0);
	CHECK_INT(q.queued, 14);
	CHECK_INT(q.queued_droppable, 9);
	proto_sendq_shift(&q); /* writing a droppable one takes it off both counts */
	CHECK_INT(q.queued, 12);
	CHECK_INT(q.queued_droppable, 7);
	proto_sendq_drop_droppable(&q);
	CHECK_INT(q.queued, 5);
	CHECK_INT(q.queued_droppable, 0);
	sendq_contents(&q, s, sizeof(s));
	CHECK_STR(s, "k1|k22");
	/* the tail moved back to the last kept message: appends land after it */
	CHECK_INT(proto_sendq_push(&q, "d4", 2, PROTO_SENDQ_DROPPABLE), 0);
	CHECK_INT(proto_sendq_push(&q, "k3", 2, 0), 0);
	sendq_contents(&q, s, sizeof(s));
	CHECK_STR(s, "k1|k22|d4|k3");
	CHECK_INT(q.queued_droppable, 2);
	proto_sendq_release(&q);

	/* only droppable messages: the queue ends empty, tail included */
	proto_sendq_init(&q, 100, 0);
	CHECK_INT(proto_sendq_push(&q, "d1", 2, PROTO_SENDQ_DROPPABLE), 0);
	CHECK_INT(proto_sendq_push(&q, "d2", 2, PROTO_SENDQ_DROPPABLE), 0);
	proto_sendq_drop_droppable(&q);
	CHECK(proto_sendq_empty(&q));
	CHECK(q.tail == NULL);
	CHECK_INT(q.queued, 0);
	CHECK_INT(proto_sendq_push(&q, "k", 1, 0), 0);
	sendq_contents(&q, s, sizeof(s));
	CHECK_STR(s, "k");
	proto_sendq_release(&q);
}

TEST(sendq_release_frees_all)
{
	/* ASan/LSan reports what release would leak */
	struct proto_sendq q;
	proto_sendq_init(&q, 1u << 20, 16);
	for (int i = 0; i < 100; i++)
		CHECK_INT(proto_sendq_push(&q, "payload", 7, i % 3 ? 0 : PROTO_SENDQ_DROPPABLE), 0);
	proto_sendq_release(&q);
	CHECK(proto_sendq_empty(&q));
	CHECK(q.tail == NULL);
	CHECK_INT(q.queued, 0);
	CHECK_INT(q.queued_droppable, 0);
	CHECK_INT(q.max, 1u << 20); /* usable again, same cap */
	CHECK_INT(q.headroom, 16);
	proto_sendq_release(&q); /* idempotent */
	CHECK_INT(proto_sendq_push(&q, "x", 1, 0), 0);
	proto_sendq_release(&q);
}

int main(void)
{
	RUN(decodes_captured_print);
	RUN(encodes_reply_byte_exact);
	RUN(error_response_round_trips);
	RUN(rejects_malformed);
	RUN(depth_cap);
	RUN(decoded_size_cap);
	RUN(accessors_and_packers);
	RUN(session_correlates);
	RUN(session_caps_pending);
	RUN(session_reentrant_fail_all);
	RUN(sendq_keeps_order_and_headroom);
	RUN(sendq_cap);
	RUN(sendq_message_filled_in_place);
	RUN(sendq_droppable_accounting_and_discard);
	RUN(sendq_release_frees_all);
	return tap_done();
}
