/*
 * The master's own WebSocket frame reader (src/master/wsbulk.c): headers of
 * every length form and each malformation, the 8-byte unmasking at every
 * phase, streams cut at every size (fragmented messages with a ping between
 * fragments, pong, text, close), the message cap and a resume inside a frame;
 * the direct reads (payload received straight into the message buffer, as
 * http-ws.c does) with all-zero and random keys, in reads of every size.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "master/wsbulk.h"
#include "tap.h"

static const unsigned char key[4] = {0x37, 0xfa, 0x21, 0x3d};

/* Appends one masked frame to out; returns its total length. */
static size_t frame(unsigned char *out, unsigned b0, const unsigned char *payload, size_t len,
		    const unsigned char k[4])
{
	size_t n = 0;
	out[n++] = (unsigned char)b0;
	if (len < 126) {
		out[n++] = (unsigned char)(0x80 | len);
	} else if (len < 65536) {
		out[n++] = 0x80 | 126;
		out[n++] = (unsigned char)(len >> 8);
		out[n++] = (unsigned char)len;
	} else {
		out[n++] = 0x80 | 127;
		for (int i = 7; i >= 0; i--)
			out[n++] = (unsigned char)((uint64_t)len >> (8 * i));
	}
	memcpy(out + n, k, 4);
	n += 4;
	for (size_t i = 0; i < len; i++)
		out[n + i] = payload[i] ^ k[i & 3];
	return n + len;
}

static void fill(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (unsigned char)(seed >> 16);
	}
}

TEST(unmask_every_phase_and_length)
{
	unsigned char src[64], dst[64], ref[64];
	fill(src, sizeof(src), 1);
	for (unsigned phase = 0; phase < 8; phase++)
		for (size_t len = 0; len <= 41; len++) {
			for (size_t i = 0; i < len; i++)
				ref[i] = src[i] ^ key[(phase + i) & 3];
			wsbulk_unmask(dst, src, len, key, phase);
			if (memcmp(dst, ref, len))
				TAP_FAIL("phase %u len %zu differs", phase, len);
			memcpy(dst, src, len);
			wsbulk_unmask(dst, dst, len, key, phase); /* in place */
			if (memcmp(dst, ref, len))
				TAP_FAIL("in place: phase %u len %zu differs", phase, len);
		}
}

TEST(header_forms_and_prefixes)
{
	static unsigned char pl[70000], buf[70100];
	size_t lens[] = {0, 5, 125, 126, 65535, 65536, 70000};
	size_t hls[] = {6, 6, 6, 8, 8, 14, 14};
	for (size_t t = 0; t < sizeof(lens) / sizeof(lens[0]); t++) {
		size_t n = frame(buf, 0x82, pl, lens[t], key);
		CHECK_INT((long)n, (long)(hls[t] + lens[t]));
		struct wsbulk_frame f;
		const char *why = NULL;
		for (size_t have = 0; have < hls[t]; have++)
			CHECK_INT(wsbulk_header(buf, have, &f, &why), 0);
		CHECK_INT(wsbulk_header(buf, hls[t], &f, &why), (int)hls[t]);
		CHECK(f.len == lens[t]);
		CHECK(f.fin);
		CHECK_INT((int)f.opcode, WSBULK_OP_BINARY);
		CHECK(!memcmp(f.key, key, 4));
	}
}

static const char *header_error(const unsigned char *h, size_t n)
{
	struct wsbulk_frame f;
	const char *why = NULL;
	return wsbulk_header(h, n, &f, &why) == -1 ? why : NULL;
}

TEST(header_malformations)
{
	unsigned char h[14] = {0x82, 0x85, 1, 2, 3, 4};
	CHECK(header_error(h, 6) == NULL);
	h[0] = 0xc2; /* RSV1 */
	CHECK(header_error(h, 6) != NULL);
	h[0] = 0x83; /* opcode 3 */
	CHECK(header_error(h, 6) != NULL);
	h[0] = 0x8b; /* opcode 11 */
	CHECK(header_error(h, 6) != NULL);
	h[0] = 0x82;
	h[1] = 0x05; /* not masked */
	CHECK_STR(header_error(h, 6), "client frame not masked");
	h[0] = 0x09; /* ping without FIN */
	h[1] = 0x85;
	CHECK_STR(header_error(h, 6), "fragmented control frame");
	h[0] = 0x89;
	h[1] = 0x80 | 126; /* ping of 126+ bytes */
	CHECK_STR(header_error(h, 8), "control frame over 125 bytes");
	unsigned char big[14] = {0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4};
	CHECK_STR(header_error(big, 14), "frame length over 2^63");
}

struct seen {
	int messages, pings, pongs, closes;
	unsigned close_code;
	size_t lens[8];
	bool binary[8];
	unsigned char *data[8];
	unsigned char ping[WSBULK_CTL_MAX];
	size_t ping_len;
};

/* Feeds stream in pieces of `step` bytes (0: random sizes); returns the
 * last event. */
static enum wsbulk_event feed(struct wsbulk *p, const unsigned char *s, size_t n, size_t step,
			      struct buf *msg, struct seen *z)
{
	enum wsbulk_event last = WSBULK_MORE;
	unsigned seed = 7;
	size_t off = 0;
	while (off < n) {
		size_t k = step;
		if (!k) {
			seed = seed * 1103515245u + 12345u;
			k = 1 + (seed >> 16) % 40000;
		}
		if (k > n - off)
			k = n - off;
		const unsigned char *in = s + off;
		size_t left = k;
		while (left) {
			enum wsbulk_event ev;
			size_t used = wsbulk_parse(p, in, left, msg, &ev);
			in += used;
			left -= used;
			last = ev;
			if (ev == WSBULK_MESSAGE && z->messages < 8) {
				z->lens[z->messages] = msg->len;
				z->binary[z->messages] = p->msg_binary;
				z->data[z->messages] = malloc(msg->len + 1);
				memcpy(z->data[z->messages], msg->ptr, msg->len);
				z->messages++;
				buf_reset(msg);
			} else if (ev == WSBULK_PING) {
				z->pings++;
				memcpy(z->ping, p->ctl, p->ctl_len);
				z->ping_len = p->ctl_len;
			} else if (ev == WSBULK_PONG) {
				z->pongs++;
			} else if (ev == WSBULK_CLOSE) {
				z->closes++;
				z->close_code = p->close_code;
			} else if (ev == WSBULK_ERROR || ev == WSBULK_TOOBIG) {
				return ev;
			}
		}
		off += k;
	}
	return last;
}

static void seen_free(struct seen *z)
{
	for (int i = 0; i < z->messages; i++)
		free(z->data[i]);
}

TEST(stream_at_every_cut)
{
	static unsigned char a[300000], b1[1000], b2[500], s[320000];
	fill(a, sizeof(a), 2);
	fill(b1, sizeof(b1), 3);
	fill(b2, sizeof(b2), 4);
	const unsigned char k2[4] = {0, 0, 0, 0}, k3[4] = {0xff, 1, 0x80, 7};
	size_t n = 0;
	n += frame(s + n, 0x82, a, sizeof(a), key);
	n += frame(s + n, 0x02, b1, sizeof(b1), k3);                  /* fragment 1 */
	n += frame(s + n, 0x89, (const unsigned char *)"hi", 2, key); /* ping between */
	n += frame(s + n, 0x80, b2, sizeof(b2), k2);                  /* last fragment */
	n += frame(s + n, 0x8a, NULL, 0, key);                        /* pong */
	n += frame(s + n, 0x81, (const unsigned char *)"text", 4, k3);
	n += frame(s + n, 0x82, NULL, 0, key); /* empty binary message */
	unsigned char cl[2] = {0x03, 0xe9};    /* 1001 */
	n += frame(s + n, 0x88, cl, 2, key);
	size_t steps[] = {1, 2, 3, 13, 14, 15, 4096, 65536, 262144, 0};
	for (size_t t = 0; t < sizeof(steps) / sizeof(steps[0]); t++) {
		struct wsbulk p;
		wsbulk_init(&p);
		struct buf msg;
		buf_init(&msg, 1 << 20);
		struct seen z = {0};
		enum wsbulk_event last = feed(&p, s, n, steps[t], &msg, &z);
		CHECK_INT(last, WSBULK_CLOSE);
		CHECK_INT(z.messages, 4);
		CHECK_INT(z.pings, 1);
		CHECK_INT(z.pongs, 1);
		CHECK_INT(z.closes, 1);
		CHECK_INT((int)z.close_code, 1001);
		CHECK(z.ping_len == 2 && !memcmp(z.ping, "hi", 2));
		CHECK(z.lens[0] == sizeof(a) && z.binary[0] && !memcmp(z.data[0], a, sizeof(a)));
		CHECK(z.lens[1] == sizeof(b1) + sizeof(b2) && z.binary[1] &&
		      !memcmp(z.data[1], b1, sizeof(b1)) &&
		      !memcmp(z.data[1] + sizeof(b1), b2, sizeof(b2)));
		CHECK(z.lens[2] == 4 && !z.binary[2] && !memcmp(z.data[2], "text", 4));
		CHECK(z.lens[3] == 0 && z.binary[3]);
		if (tap_cur_failed)
			printf("# at step %zu\n", steps[t]);
		seen_free(&z);
		buf_release(&msg);
	}
}

TEST(message_cap)
{
	static unsigned char a[5000], s[6000];
	size_t n = frame(s, 0x82, a, sizeof(a), key);
	struct wsbulk p;
	wsbulk_init(&p);
	struct buf msg;
	buf_init(&msg, 4999);
	struct seen z = {0};
	CHECK_INT(feed(&p, s, n, 100, &msg, &z), WSBULK_TOOBIG);
	CHECK_INT(z.messages, 0);
	/* fragments add up: 3000 + 3000 over a 5000 cap */
	n = frame(s, 0x02, a, 3000, key);
	wsbulk_init(&p);
	buf_release(&msg);
	buf_init(&msg, 5000);
	static unsigned char s2[7000];
	memcpy(s2, s, n);
	n += frame(s2 + n, 0x80, a, 3000, key);
	CHECK_INT(feed(&p, s2, n, 0, &msg, &z), WSBULK_TOOBIG);
	/* a dead parser stays dead */
	enum wsbulk_event ev;
	CHECK(wsbulk_parse(&p, s2, 10, &msg, &ev) == 10);
	CHECK_INT(ev, WSBULK_ERROR);
	buf_release(&msg);
}

TEST(sequence_errors)
{
	static unsigned char s[200];
	const unsigned char x[3] = {1, 2, 3};
	struct wsbulk p;
	struct buf msg;
	buf_init(&msg, 1000);
	struct seen z = {0};
	size_t n = frame(s, 0x80, x, 3, key); /* continuation first */
	wsbulk_init(&p);
	CHECK_INT(feed(&p, s, n, 0, &msg, &z), WSBULK_ERROR);
	CHECK_STR(p.why, "continuation frame without a message to continue");
	n = frame(s, 0x02, x, 3, key);
	n += frame(s + n, 0x82, x, 3, key); /* new message inside */
	wsbulk_init(&p);
	buf_reset(&msg);
	CHECK_INT(feed(&p, s, n, 1, &msg, &z), WSBULK_ERROR);
	CHECK_STR(p.why, "new message inside a fragmented one");
	/* a malformed header after a good frame: the good one is delivered */
	n = frame(s, 0x82, x, 3, key);
	s[n++] = 0xf2;
	s[n++] = 0x80;
	wsbulk_init(&p);
	buf_reset(&msg);
	z.messages = 0;
	CHECK_INT(feed(&p, s, n, 0, &msg, &z), WSBULK_ERROR);
	CHECK_INT(z.messages, 1);
	seen_free(&z);
	buf_release(&msg);
}

TEST(resume_inside_a_frame)
{
	static unsigned char a[100000], s[100100];
	fill(a, sizeof(a), 9);
	size_t n = frame(s, 0x82, a, sizeof(a), key);
	struct wsbulk_frame f;
	const char *why;
	CHECK_INT(wsbulk_header(s, n, &f, &why), 14);
	for (size_t seen = 1; seen < 9; seen++) {
		struct buf msg;
		buf_init(&msg, 1 << 20);
		CHECK_INT(buf_grow(&msg, sizeof(a)), 0);
		CHECK_INT(buf_add(&msg, a, 5000 + seen), 0); /* what the other reader gave */
		struct wsbulk p;
		wsbulk_resume(&p, &f, 5000 + seen);
		struct seen z = {0};
		CHECK_INT(feed(&p, s + 14 + 5000 + seen, n - 14 - 5000 - seen, 0, &msg, &z),
			  WSBULK_MESSAGE);
		CHECK(z.messages == 1 && z.lens[0] == sizeof(a) &&
		      !memcmp(z.data[0], a, sizeof(a)));
		seen_free(&z);
		buf_release(&msg);
	}
}

TEST(unmask_zero_key)
{
	static const unsigned char zero[4] = {0, 0, 0, 0};
	unsigned char src[41], dst[41];
	fill(src, sizeof(src), 5);
	for (unsigned phase = 0; phase < 4; phase++) {
		memset(dst, 0xaa, sizeof(dst));
		wsbulk_unmask(dst, src, sizeof(src), zero, phase);
		CHECK(!memcmp(dst, src, sizeof(src)));
		wsbulk_unmask(dst, dst, sizeof(dst), zero, phase); /* in place: nothing */
		CHECK(!memcmp(dst, src, sizeof(src)));
	}
}

/* What http-ws.c does with one read of `got` bytes from s: the part that
 * fits the data frame under way straight into msg's tail, at most `tail`
 * more through wsbulk_parse(); returns the bytes taken and counts events. */
static size_t read_direct(struct wsbulk *p, const unsigned char *s, size_t got, size_t tail,
			  struct buf *msg, struct seen *z, enum wsbulk_event *last)
{
	size_t direct = wsbulk_direct_room(p, msg);
	size_t took = 0;
	if (direct) {
		if (direct > got)
			direct = got;
		memcpy(msg->ptr + msg->len, s, direct); /* recvmsg()'s first iovec */
		enum wsbulk_event ev = wsbulk_direct_done(p, msg, direct);
		*last = ev;
		if (ev == WSBULK_MESSAGE && z->messages < 8) {
			z->lens[z->messages] = msg->len;
			z->data[z->messages] = malloc(msg->len + 1);
			memcpy(z->data[z->messages], msg->ptr, msg->len);
			z->messages++;
			buf_reset(msg);
		}
		took = direct;
		got -= direct;
	}
	if (got > tail)
		got = tail;
	struct seen zz = {0};
	if (got)
		*last = feed(p, s + took, got, got, msg, &zz);
	for (int i = 0; i < zz.messages && z->messages < 8; i++) {
		z->lens[z->messages] = zz.lens[i];
		z->data[z->messages++] = zz.data[i];
	}
	z->pings += zz.pings;
	return took + got;
}

TEST(direct_reads_any_key)
{
	static unsigned char a[262151], b1[70000], b2[1000], c[100000], s[440000];
	fill(a, sizeof(a), 11);
	fill(b1, sizeof(b1), 12);
	fill(b2, sizeof(b2), 13);
	fill(c, sizeof(c), 14);
	const unsigned char zero[4] = {0, 0, 0, 0}, k3[4] = {0xff, 1, 0x80, 7};
	size_t n = 0;
	n += frame(s + n, 0x82, a, sizeof(a), zero);
	n += frame(s + n, 0x02, b1, sizeof(b1), k3); /* fragment 1, random key */
	n += frame(s + n, 0x89, (const unsigned char *)"hi", 2, zero);
	n += frame(s + n, 0x80, b2, sizeof(b2), zero); /* last fragment, zero key */
	n += frame(s + n, 0x82, c, sizeof(c), key);
	n += frame(s + n, 0x82, NULL, 0, zero);
	size_t reads[] = {1, 7, 14, 4096, 65536, 262144, 1 << 20, 0};
	size_t tails[] = {1, 14, 4096, 1 << 20};
	for (size_t t = 0; t < sizeof(reads) / sizeof(reads[0]); t++)
		for (size_t u = 0; u < sizeof(tails) / sizeof(tails[0]); u++) {
			struct wsbulk p;
			wsbulk_init(&p);
			struct buf msg;
			buf_init(&msg, 1 << 20);
			struct seen z = {0};
			enum wsbulk_event last = WSBULK_MORE;
			unsigned seed = 3;
			size_t off = 0, rounds = 0;
			while (off < n && rounds++ < 4 * n) {
				size_t got = reads[t];
				if (!got) {
					seed = seed * 1103515245u + 12345u;
					got = 1 + (seed >> 16) % 300000;
				}
				if (got > n - off)
					got = n - off;
				off += read_direct(&p, s + off, got, tails[u], &msg, &z, &last);
			}
			CHECK(off == n);
			CHECK_INT(last, WSBULK_MESSAGE);
			CHECK_INT(z.messages, 4);
			CHECK_INT(z.pings, 1);
			CHECK(z.lens[0] == sizeof(a) && !memcmp(z.data[0], a, sizeof(a)));
			CHECK(z.lens[1] == sizeof(b1) + sizeof(b2) &&
			      !memcmp(z.data[1], b1, sizeof(b1)) &&
			      !memcmp(z.data[1] + sizeof(b1), b2, sizeof(b2)));
			CHECK(z.lens[2] == sizeof(c) && !memcmp(z.data[2], c, sizeof(c)));
			CHECK(z.lens[3] == 0);
			if (tap_cur_failed)
				printf("# at read %zu tail %zu\n", reads[t], tails[u]);
			seen_free(&z);
			buf_release(&msg);
		}
}

TEST(direct_room_only_in_data_payload)
{
	static unsigned char s[200];
	const unsigned char x[100] = {0};
	struct wsbulk p;
	struct buf msg;
	buf_init(&msg, 1000);
	wsbulk_init(&p);
	CHECK(wsbulk_direct_room(&p, &msg) == 0); /* between frames */
	size_t n = frame(s, 0x89, x, 100, key);   /* a ping: its payload is not the message's */
	enum wsbulk_event ev;
	CHECK(wsbulk_parse(&p, s, 14, &msg, &ev) == 14); /* header and 8 bytes */
	CHECK(wsbulk_direct_room(&p, &msg) == 0);
	CHECK(wsbulk_parse(&p, s + 14, n - 14, &msg, &ev) == n - 14);
	CHECK_INT(ev, WSBULK_PING);
	n = frame(s, 0x82, x, 100, key);
	CHECK(wsbulk_parse(&p, s, 10, &msg, &ev) == 10); /* header and 4 bytes */
	CHECK(wsbulk_direct_room(&p, &msg) == 96);
	s[n] = 0xf2; /* then a malformed header: room is 0 once parsing stopped */
	s[n + 1] = 0x80;
	CHECK(wsbulk_parse(&p, s + 10, n - 8, &msg, &ev) == n - 10);
	CHECK_INT(ev, WSBULK_MESSAGE);
	CHECK(wsbulk_direct_room(&p, &msg) == 0); /* between frames again */
	CHECK(wsbulk_parse(&p, s + n, 2, &msg, &ev) == 2);
	CHECK_INT(ev, WSBULK_ERROR);
	CHECK(wsbulk_direct_room(&p, &msg) == 0);
	buf_release(&msg);
}

int main(void)
{
	RUN(unmask_every_phase_and_length);
	RUN(header_forms_and_prefixes);
	RUN(header_malformations);
	RUN(stream_at_every_cut);
	RUN(message_cap);
	RUN(sequence_errors);
	RUN(resume_inside_a_frame);
	RUN(unmask_zero_key);
	RUN(direct_reads_any_key);
	RUN(direct_room_only_in_data_payload);
	return tap_done();
}
