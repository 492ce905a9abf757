/*
 * Unit tests for src/master/logmask.c: secrets masked however the output is
 * cut (every offset, random splits, both streams, '\r', "\r\n", the line
 * cap), and the output equal to masking the whole text at once.
 */
#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/limits.h"
#include "common/xalloc.h"
#include "master/logmask.h"
#include "tap.h"

/* What build.c would store, per stream: each piece, a '\n' added when it
 * does not end in one; and all pieces in emission order with prefixes. */
struct sink {
	struct buf out[3];
	struct buf stored;
	size_t pieces;
};

static int sink_index(char s)
{
	return s == 'o' ? 0 : s == 'e' ? 1 : 2;
}

static void sink_emit(void *ud, char stream, const char *text, size_t len)
{
	struct sink *k = ud;
	struct buf *b = &k->out[sink_index(stream)];
	k->pieces++;
	if (!len)
		TAP_FAIL("empty piece emitted");
	bool nl = len && text[len - 1] == '\n';
	if (buf_add(b, text, len) < 0 || (!nl && buf_addch(b, '\n') < 0))
		TAP_FAIL("sink full");
	const char *p = text, *end = text + len;
	while (p < end) {
		const char *e = memchr(p, '\n', (size_t)(end - p));
		size_t n = e ? (size_t)(e - p) : (size_t)(end - p);
		if (buf_addch(&k->stored, stream) < 0 || buf_add(&k->stored, p, n) < 0 ||
		    buf_addch(&k->stored, '\n') < 0)
			TAP_FAIL("sink full");
		p += n + (e ? 1 : 0);
	}
}

static void sink_init(struct sink *k)
{
	for (int i = 0; i < 3; i++)
		buf_init(&k->out[i], 16u << 20);
	buf_init(&k->stored, 64u << 20);
	k->pieces = 0;
}

static void sink_release(struct sink *k)
{
	for (int i = 0; i < 3; i++)
		buf_release(&k->out[i]);
	buf_release(&k->stored);
}

/* ---- the reference: the whole text at once, the guarantee written out ---- */

static bool ref_term(char c)
{
	return c == '\r' || c == '\n';
}

/* What the masker must find for one secret, derived here independently of
 * logmask.c: the value less its terminators, each line, the percent-encoded
 * form (when some byte is not unreserved), the base64 encoding and, at each
 * of the three alignments, the base64 characters that depend on the value
 * alone (standard and URL-safe alphabets). */
struct ref_pat {
	char v[8192];
	size_t len;
	bool url; /* %XX or '+' accepted per byte, no gaps */
};

static size_t ref_npat;
static struct ref_pat ref_pats[64];

static void ref_pat_add(const char *v, size_t len, bool url)
{
	if (len < LOGMASK_MIN_SECRET || ref_npat >= sizeof(ref_pats) / sizeof(ref_pats[0]))
		return;
	memcpy(ref_pats[ref_npat].v, v, len);
	ref_pats[ref_npat].len = len;
	ref_pats[ref_npat++].url = url;
}

/* Base64 character i of k zero bytes then s[0..n): from its six bits. */
static char ref_b64_char(const char *s, size_t n, size_t k, size_t i, bool urlsafe)
{
	const char *alpha =
		urlsafe ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
			: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned v = 0;
	for (size_t bit = 6 * i; bit < 6 * i + 6; bit++) {
		size_t byte = bit / 8;
		unsigned b = 0;
		if (byte >= k && byte < k + n)
			b = ((unsigned char)s[byte - k] >> (7 - bit % 8)) & 1;
		v = v * 2 + b;
	}
	return alpha[v];
}

static void ref_patterns(const char *const *secrets, size_t nsec)
{
	ref_npat = 0;
	for (size_t i = 0; i < nsec; i++) {
		const char *s = secrets[i];
		size_t n = strlen(s), len = 0;
		char v[8192];
		bool url = false;
		for (size_t j = 0; j < n; j++) {
			if (!ref_term(s[j]))
				v[len++] = s[j];
			if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
				    "-._~",
				    s[j]))
				url = true;
		}
		if (len < LOGMASK_MIN_SECRET)
			continue;
		ref_pat_add(v, len, false);
		for (const char *l = s; *l;) {
			size_t e = strcspn(l, "\r\n");
			ref_pat_add(l, e, false);
			l += e + (l[e] ? 1 : 0);
		}
		if (url)
			ref_pat_add(s, n, true);
		/* the whole encoding, padded */
		len = 0;
		for (size_t c = 0; c < (n + 2) / 3 * 4; c++)
			v[len++] = c * 6 < n * 8 ? ref_b64_char(s, n, 0, c, false) : '=';
		ref_pat_add(v, len, false);
		for (size_t k = 0; k < 3; k++)
			for (int urlsafe = 0; urlsafe < 2; urlsafe++) {
				len = 0;
				for (size_t c = 0; 6 * c + 6 <= 8 * (k + n); c++)
					if (6 * c >= 8 * k)
						v[len++] = ref_b64_char(s, n, k, c, urlsafe);
				ref_pat_add(v, len, false);
			}
	}
}

static int ref_hex(char c)
{
	const char *h = "0123456789abcdef0123456789ABCDEF", *p = c ? strchr(h, c) : NULL;
	return p ? (int)((p - h) % 16) : -1;
}

/* Marks in masked[] (indices into idx[]'s targets) every match of a pattern
 * of ref_patterns(): gap-tolerant, or byte/%XX/'+' for URL forms. */
static void ref_mark(const char *text, const size_t *idx, size_t k, const char *const *secrets,
		     size_t nsec, unsigned char *masked)
{
	ref_patterns(secrets, nsec);
	for (size_t p = 0; p < k; p++) {
		for (size_t i = 0; i < ref_npat; i++) {
			const struct ref_pat *pt = &ref_pats[i];
			size_t pos[3 * 8192], np = 0, q = p, j;
			for (j = 0; j < pt->len; j++) {
				int gap = 0;
				while (!pt->url && j > 0 && q < k && ref_term(text[idx[q]]) &&
				       gap < LOGMASK_MAX_GAP) {
					q++;
					gap++;
				}
				if (q >= k)
					break;
				char c = text[idx[q]];
				if (c == pt->v[j] || (pt->url && c == '+' && pt->v[j] == ' ')) {
					pos[np++] = q++;
					continue;
				}
				if (!pt->url || c != '%' || q + 2 >= k)
					break;
				int hi = ref_hex(text[idx[q + 1]]), lo = ref_hex(text[idx[q + 2]]);
				if (hi < 0 || lo < 0 || (unsigned char)pt->v[j] != hi * 16 + lo)
					break;
				pos[np++] = q;
				pos[np++] = q + 1;
				pos[np++] = q + 2;
				q += 3;
			}
			if (j == pt->len)
				for (j = 0; j < np; j++)
					masked[idx[pos[j]]] = 1;
		}
	}
}

/* The stored text of stream s: masked runs within a line become one mark. */
static char *ref_render(const char *text, const char *streams, size_t n, const char *const *secrets,
			size_t nsec, char s)
{
	unsigned char *masked = xcalloc(n + 1, 1);
	size_t *idx = xmalloc((n + 1) * sizeof(*idx)), k = 0;
	for (size_t i = 0; i < n; i++)
		idx[i] = i;
	ref_mark(text, idx, n, secrets, nsec, masked); /* arrival order */
	for (const char *x = "oeh"; *x; x++) {
		k = 0;
		for (size_t i = 0; i < n; i++)
			if (streams[i] == *x)
				idx[k++] = i;
		ref_mark(text, idx, k, secrets, nsec, masked);
	}
	struct buf out;
	buf_init(&out, 16u << 20);
	bool run = false;
	int r = 0;
	for (size_t i = 0; i < n; i++) {
		if (streams[i] != s)
			continue;
		if (masked[i] && !ref_term(text[i])) {
			if (!run)
				r |= buf_adds(&out, LOGMASK_MARK);
			run = true;
		} else {
			r |= buf_addch(&out, text[i]);
			run = false;
		}
	}
	if (out.len && out.ptr[out.len - 1] != '\n')
		r |= buf_addch(&out, '\n');
	if (r < 0)
		TAP_FAIL("reference full");
	free(masked);
	free(idx);
	return buf_detach(&out, NULL);
}

/* ---- helpers ------------------------------------------------------------- */

/* Feeds text[0..n) with streams[i] the stream of byte i, cut at every cut[]
 * (and where the stream changes), then flushes. */
static void feed_cuts(struct logmask *m, const char *text, const char *streams, size_t n,
		      const size_t *cuts, size_t ncuts)
{
	size_t start = 0, c = 0;
	for (size_t i = 1; i <= n; i++) {
		while (c < ncuts && cuts[c] < i)
			c++;
		bool cut = i == n || streams[i] != streams[start] || (c < ncuts && cuts[c] == i);
		if (cut) {
			logmask_feed(m, streams[start], text + start, i - start);
			start = i;
		}
	}
	logmask_flush(m);
}

/* True when no secret can be read in t, even across up to MAX_GAP terminators. */
static bool no_secret_in(const char *t, const char *const *secrets, size_t nsec)
{
	size_t n = strlen(t);
	unsigned char *masked = xcalloc(n + 1, 1);
	size_t *idx = xmalloc((n + 1) * sizeof(*idx));
	for (size_t i = 0; i < n; i++)
		idx[i] = i;
	ref_mark(t, idx, n, secrets, nsec, masked);
	bool ok = true;
	for (size_t i = 0; i < n; i++)
		ok = ok && !masked[i];
	free(masked);
	free(idx);
	return ok;
}

/* The stored log's line texts joined, prefixes and newlines dropped: what a
 * reader reassembles from consecutive lines of any streams. */
static char *stored_joined(const struct buf *stored)
{
	char *j = xmalloc(stored->len + 1);
	size_t n = 0;
	bool bol = true;
	for (size_t i = 0; i < stored->len; i++) {
		char c = stored->ptr[i];
		if (bol) {
			bol = false; /* the stream character */
			continue;
		}
		if (c == '\n')
			bol = true;
		else if (c != '\r')
			j[n++] = c;
	}
	j[n] = '\0';
	return j;
}

static bool check_against_ref(const char *text, const char *streams, size_t n,
			      const char *const *secrets, size_t nsec, struct sink *k)
{
	bool ok = true;
	for (int i = 0; i < 3; i++) {
		char *want = ref_render(text, streams, n, secrets, nsec, "oeh"[i]);
		if (strcmp(want, k->out[i].ptr)) {
			TAP_FAIL("stream %c: got '%s', want '%s'", "oeh"[i], k -> out[i].ptr, want);
			ok = false;
		}
		if (!no_secret_in(k->out[i].ptr, secrets, nsec)) {
			TAP_FAIL("stream %c leaks: '%s'", "oeh"[i], k -> out[i].ptr);
			ok = false;
		}
		free(want);
	}
	return ok;
}

/* ---- tests ---------------------------------------------------------------- */

static const char *const SECRETS[] = {"hunter2-TOKEN", "s3cr", "abc", "line1\nline2", "p@ss word!"};
#define NSECRETS 5

TEST(whole_text)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{"a hunter2-TOKEN b\n", "a <secret> b\n"},
		{"hunter2-TOKENhunter2-TOKEN\n", "<secret>\n"},
		{"s3cr s3c abc\n", "<secret> s3c abc\n"}, /* "abc" is too short to mask */
		{"hunter2\r\n-TOKEN\n", "<secret>\r\n<secret>\n"},
		{"hunter2\r-TOKEN\n", "<secret>\r<secret>\n"},
		{"hunter2\n\n\n-TOKEN\n", "hunter2\n\n\n-TOKEN\n"}, /* three terminators */
		{"key: line1\nline2 end", "key: <secret>\n<secret> end\n"},
		{"no newline at the end s3cr", "no newline at the end <secret>\n"},
		{"hunter2-TOKE\n", "hunter2-TOKE\n"},
		/* each line of a multi-line secret alone */
		{"got line2 and line1.\n", "got <secret> and <secret>.\n"},
		{"lin\ne2\n", "<secret>\n<secret>\n"},
		{"line\n", "line\n"},
		/* base64: the value's own encoding, wrapped or not */
		{"t: aHVudGVyMi1UT0tFTg==\n", "t: <secret>\n"},
		{"aHVudGVyMi1U\nT0tFTg==\n", "<secret>\n<secret>\n"},
		{"bGluZTEKbGluZTI=\n", "<secret>\n"},
		{"cEBzcyB3b3JkIQ==\n", "<secret>\n"},
		/* ... and inside a longer encoding, at each alignment, both alphabets */
		{"Authorization: Basic dXNlcjpodW50ZXIyLVRPS0VO\n",
		 "Authorization: Basic dXNlcjp<secret>\n"},
		{"YWJodW50ZXIyLVRPS0VO\n", "YWJ<secret>\n"},
		{"YWh1bnRlcjItVE9LRU4=\n", "YW<secret>4=\n"}, /* "4": the last bits and the end */
		{"__5odW50ZXIyLVRPS0VO\n", "__5<secret>\n"},
		/* too short to mask: nor its encodings (base64 of "abc") */
		{"YWJj\n", "YWJj\n"},
		/* percent-encoded, whatever the encoder chose, either hex case */
		{"https://u:p%40ss%20word%21@host/\n", "https://u:<secret>@host/\n"},
		{"p%40ss+word%21&x\n", "<secret>&x\n"},
		{"p@ss%20word!\n", "<secret>\n"},
		{"%70%40%73s word%21\n", "<secret>\n"},
		{"line1%0aline2 line1%0Aline2\n", "<secret> <secret>\n"},
		{"p%40ss%2word%21\n", "p%40ss%2word%21\n"},
		{"p@ss word!\n", "<secret>\n"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sink k;
		sink_init(&k);
		struct logmask *m = logmask_new(SECRETS, NSECRETS, sink_emit, &k);
		logmask_feed(m, 'o', cases[i].in, strlen(cases[i].in));
		logmask_flush(m);
		CHECK_STR(k.out[0].ptr, cases[i].out);
		logmask_free(m);
		sink_release(&k);
	}
}

TEST(lines_go_out_at_once)
{
	/* a complete line that cannot begin a secret is not held back */
	struct sink k;
	sink_init(&k);
	struct logmask *m = logmask_new(SECRETS, NSECRETS, sink_emit, &k);
	logmask_feed(m, 'o', "hello\nwor", 9);
	CHECK_STR(k.out[0].ptr, "hello\n");
	logmask_feed(m, 'e', "warn\n", 5);
	CHECK_STR(k.out[1].ptr, "warn\n");
	/* a line ending in what may begin a secret waits for more */
	logmask_feed(m, 'o', "ld hunter2\n", 11);
	CHECK_STR(k.out[0].ptr, "hello\n");
	logmask_feed(m, 'o', "#\n", 2);
	CHECK_STR(k.out[0].ptr, "hello\nworld hunter2\n#\n");
	logmask_flush(m);
	logmask_free(m);
	sink_release(&k);
}

TEST(every_offset_two_pieces)
{
	const char *pre = "some output before ", *post = " and after\n";
	const char *sec = SECRETS[0];
	char text[256];
	int n = snprintf(text, sizeof(text), "%s%s%s", pre, sec, post);
	size_t at = strlen(pre);
	for (size_t off = 0; off <= strlen(sec); off++) {
		for (int mode = 0; mode < 4; mode++) {
			/* mode 0: one stream; 1: stdout then stderr; 2: a '\r' at the
			 * cut; 3: "\r\n" at the cut, second half on stderr */
			char t[300], streams[300];
			size_t len = 0, cut = at + off;
			for (size_t i = 0; i < (size_t)n; i++) {
				if (i == cut && mode >= 2) {
					t[len] = '\r';
					streams[len++] = 'o';
					if (mode == 3) {
						t[len] = '\n';
						streams[len++] = 'o';
					}
				}
				t[len] = text[i];
				streams[len++] = (mode == 1 || mode == 3) && i >= cut ? 'e' : 'o';
			}
			size_t cuts[1] = {cut};
			struct sink k;
			sink_init(&k);
			struct logmask *m = logmask_new(SECRETS, NSECRETS, sink_emit, &k);
			feed_cuts(m, t, streams, len, cuts, 1);
			bool ok = check_against_ref(t, streams, len, SECRETS, NSECRETS, &k);
			char *joined = stored_joined(&k.stored);
			if (strstr(joined, sec) || strstr(k.stored.ptr, sec)) {
				TAP_FAIL("offset %zu mode %d: stored log leaks: '%s'", off, mode,
					 k.stored.ptr);
				ok = false;
			}
			if (!strstr(k.stored.ptr, LOGMASK_MARK)) {
				TAP_FAIL("offset %zu mode %d: nothing masked", off, mode);
				ok = false;
			}
			free(joined);
			logmask_free(m);
			sink_release(&k);
			if (!ok)
				return;
		}
	}
}

/* The sanitizer build is ten times slower and shares the machine with the
 * e2e tests: fewer random rounds there (the fuzz target covers more). */
#ifdef __SANITIZE_ADDRESS__
#define LOGMASK_TEST_ITERATIONS 300
#else
#define LOGMASK_TEST_ITERATIONS 3000
#endif

TEST(random_splits)
{
	srand(12345);
	static const char *const frag[] = {"hunter2-TOKEN",
					   "hunter2",
					   "-TOKEN",
					   "s3cr",
					   "s3",
					   "line1\nline2",
					   "line1",
					   "x",
					   "y\n",
					   "\r",
					   "\r\n",
					   "\n",
					   "abc",
					   "h",
					   "aHVudGVyMi1UT0tFTg==",
					   "aHVudGVy",
					   "Mi1UT0tFTg",
					   "line1%0Aline2",
					   "%0a",
					   "%4",
					   "%40",
					   "p%40ss+word%21",
					   "p@ss word!",
					   "+",
					   "p@ss",
					   "dXNlcjpodW50ZXIyLVRPS0VO"};
	for (int iter = 0; iter < LOGMASK_TEST_ITERATIONS; iter++) {
		char text[2048], streams[2048];
		size_t n = 0;
		int nfrag = 1 + rand() % 40;
		for (int f = 0; f < nfrag; f++) {
			const char *s = frag[rand() % (int)(sizeof(frag) / sizeof(frag[0]))];
			char stream = "ooe"[rand() % 3];
			if (rand() % 20 == 0)
				stream = 'h';
			size_t sl = strlen(s);
			for (size_t i = 0; i < sl && n < sizeof(text); i++) {
				/* sometimes a terminator or a stream change inside a fragment */
				if (i && rand() % 8 == 0 && n < sizeof(text) - 1) {
					text[n] = "\r\n"[rand() % 2];
					streams[n++] = stream;
				}
				if (i && rand() % 8 == 0)
					stream = stream == 'o' ? 'e' : 'o';
				text[n] = s[i];
				streams[n++] = stream;
			}
		}
		size_t cuts[64], ncuts = (size_t)(rand() % 12);
		for (size_t c = 0; c < ncuts; c++)
			cuts[c] = (size_t)rand() % (n + 1);
		for (size_t a = 1; a < ncuts; a++) /* sorted */
			for (size_t b = a; b > 0 && cuts[b - 1] > cuts[b]; b--) {
				size_t t = cuts[b];
				cuts[b] = cuts[b - 1];
				cuts[b - 1] = t;
			}
		struct sink k;
		sink_init(&k);
		struct logmask *m = logmask_new(SECRETS, NSECRETS, sink_emit, &k);
		feed_cuts(m, text, streams, n, cuts, ncuts);
		bool ok = check_against_ref(text, streams, n, SECRETS, NSECRETS, &k);
		logmask_free(m);
		sink_release(&k);
		if (!ok) {
			TAP_FAIL("iteration %d", iter);
			return;
		}
	}
}

TEST(byte_at_a_time_equals_whole)
{
	const char *t = "a hunter2-TO\rKEN b\nline1\r\nline2 s3\ncr hunter2-TOKEN";
	size_t n = strlen(t);
	struct sink whole, bytes;
	sink_init(&whole);
	sink_init(&bytes);
	struct logmask *m = logmask_new(SECRETS, NSECRETS, sink_emit, &whole);
	logmask_feed(m, 'o', t, n);
	logmask_flush(m);
	logmask_free(m);
	m = logmask_new(SECRETS, NSECRETS, sink_emit, &bytes);
	for (size_t i = 0; i < n; i++)
		logmask_feed(m, 'o', t + i, 1);
	logmask_flush(m);
	logmask_free(m);
	CHECK_STR(bytes.out[0].ptr, whole.out[0].ptr);
	CHECK_STR(whole.out[0].ptr,
		  "a <secret>\r<secret> b\n<secret>\r\n<secret> <secret>\n<secret> <secret>\n");
	sink_release(&whole);
	sink_release(&bytes);
}

TEST(long_lines_are_cut_and_stay_masked)
{
	/* a line over KILN_LOGMASK_MAX_LINE is emitted in parts; a secret
	 * across the cut is masked all the same */
	size_t n = KILN_LOGMASK_MAX_LINE * 3;
	char *t = xmalloc(n + 1);
	memset(t, 'x', n);
	const char *sec = SECRETS[0];
	size_t sl = strlen(sec);
	for (size_t at = KILN_LOGMASK_MAX_LINE - 20; at < n - sl; at += KILN_LOGMASK_MAX_LINE - 3)
		memcpy(t + at, sec, sl);
	t[n - 1] = '\n';
	t[n] = '\0';
	for (size_t step = 1000; step <= n; step *= 7) {
		struct sink k;
		sink_init(&k);
		struct logmask *m = logmask_new(SECRETS, NSECRETS, sink_emit, &k);
		for (size_t i = 0; i < n; i += step)
			logmask_feed(m, 'o', t + i, i + step < n ? step : n - i);
		logmask_flush(m);
		char *joined = stored_joined(&k.stored);
		CHECK(!strstr(joined, sec));
		CHECK(strstr(joined, LOGMASK_MARK) != NULL);
		CHECK(k.pieces >= 3); /* cut: nothing waits for a line's end forever */
		/* every stored line within the cap */
		size_t longest = 0, cur = 0;
		for (size_t i = 0; i < k.stored.len; i++) {
			cur = k.stored.ptr[i] == '\n' ? 0 : cur + 1;
			if (cur > longest)
				longest = cur;
		}
		CHECK(longest <= KILN_LOGMASK_MAX_LINE + 1);
		free(joined);
		logmask_free(m);
		sink_release(&k);
	}
	free(t);
}

TEST(no_secrets_passes_through)
{
	struct sink k;
	sink_init(&k);
	struct logmask *m = logmask_new(NULL, 0, sink_emit, &k);
	logmask_feed(m, 'o', "abc\ndef", 7);
	CHECK_STR(k.out[0].ptr, "abc\n");
	logmask_feed(m, 'h', "header\n", 7);
	logmask_flush(m);
	CHECK_STR(k.out[0].ptr, "abc\ndef\n");
	CHECK_STR(k.out[2].ptr, "header\n");
	logmask_free(m);
	logmask_free(NULL);
	sink_release(&k);
}

/* slice "perfsteps2": without secrets the masker takes a short path: each
 * stream's bytes come out whole and in order, in whole lines (a partial one
 * only at a flush or the line cap), lines within the cap, whatever the
 * pieces and however the streams interleave. */
TEST(no_secrets_short_path_keeps_lines)
{
	size_t n = KILN_LOGMASK_MAX_LINE * 2 + 500;
	char *t = xmalloc(n);
	unsigned seed = 7;
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		t[i] = (seed >> 16) % 40 == 0 ? '\n' : (char)('a' + (seed >> 8) % 26);
	}
	memset(t + 1000, 'y', KILN_LOGMASK_MAX_LINE + 10); /* a line over the cap */
	uint64_t digest = 1469598103934665603ull;
	for (int round = 0; round < 20; round++) {
		struct sink a;
		sink_init(&a);
		struct buf in[3];
		for (int i = 0; i < 3; i++)
			buf_init(&in[i], 16u << 20);
		struct logmask *ma = logmask_new(NULL, 0, sink_emit, &a);
		for (size_t i = 0; i < n;) {
			seed = seed * 1103515245u + 12345u;
			size_t k = 1 + (seed >> 8) % (round < 10 ? 50 : 20000);
			if (k > n - i)
				k = n - i;
			int si = (int)((seed >> 4) % 3);
			logmask_feed(ma, "oeh"[si], t + i, k);
			CHECK(buf_add(&in[si], t + i, k) >= 0);
			if ((seed >> 12) % 17 == 0) {
				logmask_flush(ma);
				for (int j = 0; j < 3; j++) /* what the sink adds at a flush */
					if (in[j].len && in[j].ptr[in[j].len - 1] != '\n')
						CHECK(buf_addch(&in[j], '\n') >= 0);
			}
			i += k;
		}
		logmask_flush(ma);
		for (int j = 0; j < 3; j++) {
			if (in[j].len && in[j].ptr[in[j].len - 1] != '\n')
				CHECK(buf_addch(&in[j], '\n') >= 0);
			/* the stream's bytes, with a '\n' where the cap cut a line */
			size_t ai = 0, ii = 0, cur = 0;
			bool same = true;
			while (same && ai < a.out[j].len && ii < in[j].len) {
				char c = a.out[j].ptr[ai];
				if (c == in[j].ptr[ii]) {
					cur = c == '\n' ? 0 : cur + 1;
					ai++, ii++;
				} else if (c == '\n' && cur >= KILN_LOGMASK_MAX_LINE - 8) {
					cur = 0;
					ai++;
				} else {
					same = false;
				}
				if (cur > KILN_LOGMASK_MAX_LINE)
					same = false;
			}
			CHECK(same && ai == a.out[j].len && ii == in[j].len);
			for (size_t i = 0; i < a.out[j].len; i++)
				digest = (digest ^ (unsigned char)a.out[j].ptr[i]) *
					 1099511628211ull;
			buf_release(&in[j]);
		}
		digest = (digest ^ a.pieces) * 1099511628211ull;
		logmask_free(ma);
		sink_release(&a);
	}
	/* the same pieces, byte for byte and cut for cut, as the masker emitted
	 * before the short path (this digest measured on that code) */
	if (digest != 0x9a061d13160d21faull)
		printf("# digest %llx\n", (unsigned long long)digest);
	CHECK(digest == 0x9a061d13160d21faull);
	free(t);
}

TEST(long_secret_masked_by_its_start)
{
	/* past KILN_LOGMASK_MAX_SECRET bytes, the start of the value is masked */
	size_t n = KILN_LOGMASK_MAX_SECRET + 1000;
	char *sec = xmalloc(n + 1);
	unsigned x = 12345;
	for (size_t i = 0; i < n; i++) {
		x = x * 1103515245u + 12345u;
		sec[i] = (char)('A' + (x >> 16) % 26);
	}
	sec[n] = '\0';
	const char *secrets[] = {sec};
	struct sink k;
	sink_init(&k);
	struct logmask *m = logmask_new(secrets, 1, sink_emit, &k);
	logmask_feed(m, 'o', sec, n);
	logmask_feed(m, 'o', "\n", 1);
	logmask_flush(m);
	char *want = xasprintf("%s%s\n", LOGMASK_MARK, sec + KILN_LOGMASK_MAX_SECRET);
	CHECK(!strcmp(k.out[0].ptr, want));
	free(want);
	logmask_free(m);
	sink_release(&k);
	free(sec);
}

TEST(many_secrets_keep_their_values_first)
{
	/* more secrets than KILN_LOGMASK_MAX_PATTERNS forms: every value is
	 * masked (encodings are what the cap drops) */
	enum { N = KILN_LOGMASK_MAX_PATTERNS / 2 };
	char **secrets = xcalloc(N, sizeof(*secrets));
	for (int i = 0; i < N; i++)
		secrets[i] = xasprintf("tok-%04d-%c", i, 'a' + i % 26);
	struct sink k;
	sink_init(&k);
	struct logmask *m = logmask_new((const char *const *)secrets, N, sink_emit, &k);
	for (int i = 0; i < N; i++) {
		logmask_feed(m, 'o', secrets[i], strlen(secrets[i]));
		logmask_feed(m, 'o', "\n", 1);
	}
	logmask_flush(m);
	CHECK(strstr(k.out[0].ptr, "tok-") == NULL);
	logmask_free(m);
	sink_release(&k);
	for (int i = 0; i < N; i++)
		free(secrets[i]);
	free(secrets);
}

TEST(small_output_allocates_little)
{
	/* a masker is made per step log: a line or two must not cost every
	 * stream's full pending and line buffers (~180 KiB each, which made
	 * master CPU per step mostly malloc and page faults) */
	enum { N = 200 };
	const char *secrets[] = {"hunter2-TOKEN"};
	struct logmask *ms[N];
	struct sink k;
	sink_init(&k);
	size_t before = mallinfo2().uordblks;
	for (int i = 0; i < N; i++) {
		ms[i] = logmask_new(secrets, 1, sink_emit, &k);
		logmask_feed(ms[i], 'o', "hello hunter2-TOKEN\n", 20);
		logmask_feed(ms[i], 'h', "header\n", 7);
	}
	size_t used = mallinfo2().uordblks - before;
	if (!used) /* a sanitizer's allocator: glibc's counters do not see it */
		printf("# small_output_allocates_little: no malloc statistics here\n");
	CHECK(used / N < 32 * 1024);
	for (int i = 0; i < N; i++) {
		logmask_flush(ms[i]);
		logmask_free(ms[i]);
	}
	CHECK(strstr(k.out[0].ptr, "hunter2") == NULL);
	CHECK(strstr(k.out[0].ptr, "hello " LOGMASK_MARK "\n") != NULL);
	sink_release(&k);
}

TEST(shared_set_masks_each_log_alone)
{
	/* the maskers of a build's logs share one set of patterns and two of
	 * them at once keep their own held-back bytes */
	struct logmask_set *ks = logmask_set_new(SECRETS, NSECRETS);
	CHECK(!logmask_set_empty(ks));
	struct sink k1, k2;
	sink_init(&k1);
	sink_init(&k2);
	struct logmask *m1 = logmask_new_shared(ks, sink_emit, &k1);
	struct logmask *m2 = logmask_new_shared(ks, sink_emit, &k2);
	logmask_feed(m1, 'o', "a hunter2", 9);
	logmask_feed(m2, 'o', "t: aHVudGVyMi1U", 15);
	logmask_feed(m1, 'o', "-TOKEN b\n", 9);
	logmask_feed(m2, 'o', "T0tFTg==\np%40ss+word%21\n", 25);
	logmask_flush(m1);
	logmask_flush(m2);
	CHECK_STR(k1.out[0].ptr, "a <secret> b\n");
	CHECK_STR(k2.out[0].ptr, "t: <secret>\n<secret>\n");
	logmask_free(m1);
	/* freeing a masker leaves the set to the others (ASan: no use after free) */
	struct logmask *m3 = logmask_new_shared(ks, sink_emit, &k1);
	logmask_feed(m3, 'e', "s3cr\n", 5);
	logmask_flush(m3);
	CHECK_STR(k1.out[1].ptr, "<secret>\n");
	logmask_free(m3);
	logmask_free(m2);
	logmask_set_free(ks);
	sink_release(&k1);
	sink_release(&k2);
}

TEST(shared_masker_costs_little)
{
	/* a step log's masker from a shared set allocates its own state only,
	 * not the patterns and their 8 KiB first-two-bytes filter (made per
	 * log, that was 28,000 instructions of a 20-step build's every step) */
	enum { N = 200 };
	const char *secrets[] = {"hunter2-TOKEN", "p@ss word!"};
	struct logmask_set *ks = logmask_set_new(secrets, 2);
	struct logmask *ms[N];
	size_t before = mallinfo2().uordblks;
	for (int i = 0; i < N; i++)
		ms[i] = logmask_new_shared(ks, sink_emit, NULL);
	size_t used = mallinfo2().uordblks - before;
	if (!used)
		printf("# shared_masker_costs_little: no malloc statistics here\n");
	CHECK(used / N < 1024);
	for (int i = 0; i < N; i++)
		logmask_free(ms[i]);
	logmask_set_free(ks);
	/* nothing to mask: the set says so (too short, or none) */
	const char *shorts[] = {"abc"};
	ks = logmask_set_new(shorts, 1);
	CHECK(logmask_set_empty(ks));
	logmask_set_free(ks);
	ks = logmask_set_new(NULL, 0);
	CHECK(logmask_set_empty(ks));
	struct sink k;
	sink_init(&k);
	struct logmask *m = logmask_new_shared(ks, sink_emit, &k);
	logmask_feed(m, 'o', "abc\npartial", 11);
	logmask_flush(m);
	CHECK_STR(k.out[0].ptr, "abc\npartial\n");
	logmask_free(m);
	logmask_set_free(ks);
	sink_release(&k);
}

int main(void)
{
	RUN(whole_text);
	RUN(lines_go_out_at_once);
	RUN(every_offset_two_pieces);
	RUN(random_splits);
	RUN(byte_at_a_time_equals_whole);
	RUN(long_lines_are_cut_and_stay_masked);
	RUN(no_secrets_passes_through);
	RUN(no_secrets_short_path_keeps_lines); /* slice "perfsteps2" */
	RUN(long_secret_masked_by_its_start);
	RUN(many_secrets_keep_their_values_first);
	RUN(small_output_allocates_little);
	RUN(shared_set_masks_each_log_alone);
	RUN(shared_masker_costs_little);
	return tap_done();
}
