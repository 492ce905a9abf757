/*
 * Unit test for logmask.c's first-byte jump (one stream: the jump; both
 * streams interleaved: the combined scan, which does not jump) (slice "steps"): a set whose
 * patterns start with few distinct bytes scans by memchr between their
 * occurrences.  The same output, cut into the same random pieces, is masked
 * once by a set of one secret (few first bytes: the jump) and once by that
 * set plus decoy secrets whose bytes never occur in the output (many first
 * bytes: the byte-by-byte scan); what the two store must be identical, and
 * hold no form of the secret.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/xalloc.h"
#include "master/logmask.h"
#include "tap.h"

/* Each stream's bytes, in order (the pieces' cuts depend on what the
 * patterns make the masker hold back, which the decoys change). */
struct streams {
	struct buf o, e;
};

static void store_emit(void *ud, char stream, const char *text, size_t len)
{
	struct streams *k = ud;
	if (buf_add(stream == 'o' ? &k->o : &k->e, text, len) < 0)
		TAP_FAIL("sink full");
}

/* alphanumeric, so its patterns start with 3 bytes: 'h' (the value, and
 * its base64 at the second alignment), 'a' and 'o' (base64) */
static const char secret[] = "hunter2x";
/* its forms, and pieces of them, sown in the output */
static const char *const sown[] = {
	"hunter2x", "aHVudGVyMng=", "h1bnRlcjJ4", "odW50ZXIye", "hun\nter2x", "hunt", "aHVu",
	"h1bn",     "odW5",         "hh",         "aa",         "oo",         "h",    "a",
	"o",        "\n",           "\r\n",       "hunter2",    "aHVudGVyMn",
};
/* decoys: their first bytes (and their base64 forms') make the set's first
 * bytes too many for the jump; their bytes never occur in the output */
static const char *const decoys[] = {"\x01\x02\x03\x04\x05", "\x06\x07\x08\x0b\x0c",
				     "\x0e\x0f\x10\x11\x12", "\x13\x14\x15\x16\x17",
				     "\x18\x19\x1a\x1b\x1c"};

static bool same(const struct buf *x, const struct buf *y)
{
	return x->len == y->len && (x->len == 0 || memcmp(x->ptr, y->ptr, x->len) == 0);
}

static bool has(const struct buf *b, const char *s)
{
	size_t n = strlen(s);
	return b->ptr && b->len >= n && memmem(b->ptr, b->len, s, n) != NULL;
}

static unsigned rnd(unsigned *s)
{
	*s = *s * 1103515245u + 12345u;
	return (*s >> 16) & 0x7fff;
}

/* Masks text (cut at the same random points, alternating streams) with
 * the set; returns what was stored. */
static void mask_all(const struct logmask_set *set, const char *text, size_t len, unsigned seed,
		     bool both, struct streams *out)
{
	struct logmask *m = logmask_new_shared(set, store_emit, out);
	size_t p = 0;
	while (p < len) {
		size_t n = 1 + rnd(&seed) % 97;
		if (n > len - p)
			n = len - p;
		logmask_feed(m, !both || rnd(&seed) % 5 ? 'o' : 'e', text + p, n);
		p += n;
	}
	logmask_flush(m);
	logmask_free(m);
}

TEST(first_byte_jump_masks_as_the_byte_scan)
{
	const char *one[] = {secret};
	const char *many[1 + sizeof(decoys) / sizeof(decoys[0])] = {secret};
	for (size_t i = 0; i < sizeof(decoys) / sizeof(decoys[0]); i++)
		many[1 + i] = decoys[i];
	struct logmask_set *fast = logmask_set_new(one, 1);
	struct logmask_set *slow = logmask_set_new(many, sizeof(many) / sizeof(many[0]));
	unsigned seed = 12345;
	const char filler[] = "abcdefghijklmnopqrstuvwxyz 0123456789:/=-_.%+ahoHVU";
	for (int round = 0; round < 300 && !tap_cur_failed; round++) {
		struct buf text;
		struct streams a, b;
		buf_init(&text, 1u << 20);
		buf_init(&a.o, 4u << 20);
		buf_init(&a.e, 4u << 20);
		buf_init(&b.o, 4u << 20);
		buf_init(&b.e, 4u << 20);
		size_t want = 1 + rnd(&seed) % 3000;
		while (text.len < want) {
			if (rnd(&seed) % 4 == 0) {
				const char *s = sown[rnd(&seed) % (sizeof(sown) / sizeof(sown[0]))];
				CHECK_INT(buf_add(&text, s, strlen(s)), 0);
			} else {
				CHECK_INT(
					buf_addch(&text, filler[rnd(&seed) % (sizeof(filler) - 1)]),
					0);
			}
		}
		unsigned cut = rnd(&seed);
		mask_all(fast, text.ptr, text.len, cut, round % 2, &a);
		mask_all(slow, text.ptr, text.len, cut, round % 2, &b);
		if (!same(&a.o, &b.o) || !same(&a.e, &b.e))
			TAP_FAIL("round %d: the jump's output differs from the byte scan's", round);
		CHECK(!has(&a.o, secret));
		CHECK(!has(&a.o, "aHVudGVyMng"));
		CHECK(a.o.len + a.e.len > 0);
		buf_release(&text);
		buf_release(&a.o);
		buf_release(&a.e);
		buf_release(&b.o);
		buf_release(&b.e);
	}
	logmask_set_free(fast);
	logmask_set_free(slow);
}

int main(void)
{
	RUN(first_byte_jump_masks_as_the_byte_scan);
	return tap_done();
}
