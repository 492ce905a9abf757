/*
 * kiln-worker's own RFC 6455 client framing (src/worker/wsframe.c): the
 * header's shortest length form at each boundary, its bytes, and masking
 * eight bytes at a time against the RFC's byte-at-a-time definition, at
 * every length and start alignment.
 */
#include "tap.h"
#include "worker/wsframe.h"

#include <string.h>

static const unsigned char key[4] = {0x37, 0xfa, 0x21, 0x3d};

TEST(header_lengths_take_the_shortest_form)
{
	CHECK_INT(wsframe_header_len(0), 6);
	CHECK_INT(wsframe_header_len(125), 6);
	CHECK_INT(wsframe_header_len(126), 8);
	CHECK_INT(wsframe_header_len(65535), 8);
	CHECK_INT(wsframe_header_len(65536), 14);
	CHECK_INT(wsframe_header_len(262144 + 100), 14);
}

TEST(header_bytes)
{
	unsigned char h[WSFRAME_MAX_HEADER];
	CHECK_INT(wsframe_header(h, 5, key), 6);
	static const unsigned char small[] = {0x82, 0x85, 0x37, 0xfa, 0x21, 0x3d};
	CHECK(memcmp(h, small, sizeof(small)) == 0);

	CHECK_INT(wsframe_header(h, 300, key), 8);
	static const unsigned char mid[] = {0x82, 0xfe, 0x01, 0x2c, 0x37, 0xfa, 0x21, 0x3d};
	CHECK(memcmp(h, mid, sizeof(mid)) == 0);

	CHECK_INT(wsframe_header(h, 0x12345678u, key), 14);
	static const unsigned char big[] = {0x82, 0xff, 0,    0,    0,    0,    0x12,
					    0x34, 0x56, 0x78, 0x37, 0xfa, 0x21, 0x3d};
	CHECK(memcmp(h, big, sizeof(big)) == 0);
}

TEST(mask_matches_the_rfc_at_every_length_and_alignment)
{
	unsigned char src[80], got[88], want[80];
	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (unsigned char)(i * 7 + 3);
	for (size_t off = 0; off < 8; off++) {
		for (size_t len = 0; len <= 72; len++) {
			memset(got, 0xee, sizeof(got));
			memcpy(got + off, src, len);
			for (size_t i = 0; i < len; i++)
				want[i] = src[i] ^ key[i % 4];
			wsframe_mask(got + off, len, key);
			CHECK(memcmp(got + off, want, len) == 0);
			CHECK(off == 0 || got[off - 1] == 0xee);    /* nothing before */
			CHECK(got[off + len] == 0xee || len == 80); /* nothing after */
			wsframe_mask(got + off, len, key);
			CHECK(memcmp(got + off, src, len) == 0); /* masking twice restores */
		}
	}
}

TEST(zero_key_header_and_no_pass)
{
	static const unsigned char zero[4] = {0, 0, 0, 0};
	unsigned char h[WSFRAME_MAX_HEADER], p[50], was[50];
	CHECK_INT(wsframe_header(h, WSFRAME_ZERO_KEY_MIN, zero), 14);
	CHECK(h[0] == 0x82 && h[1] == 0xff); /* still a masked frame, as RFC 6455 wants */
	CHECK(h[10] == 0 && h[11] == 0 && h[12] == 0 && h[13] == 0);
	for (size_t i = 0; i < sizeof(p); i++)
		p[i] = (unsigned char)(i * 13 + 1);
	memcpy(was, p, sizeof(p));
	wsframe_mask(p, sizeof(p), zero);
	CHECK(memcmp(p, was, sizeof(p)) == 0);
}

int main(void)
{
	RUN(header_lengths_take_the_shortest_form);
	RUN(header_bytes);
	RUN(mask_matches_the_rfc_at_every_length_and_alignment);
	RUN(zero_key_header_and_no_pass);
	return tap_done();
}
