/*
 * The web UI served from memory (src/master/www.c): which paths get which
 * asset, the Accept-Encoding and If-None-Match parsers, and the embedded
 * bundle itself as embed-www.py generated it (hash-named assets that
 * index.html references, ETags that are content hashes, gzip forms that
 * really are the data's, the 40 KB core budget).
 */
#include "master/www.h"

#include "common/buf.h"
#include "common/xalloc.h"

#include "tap.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

TEST(accept_encoding)
{
	static const struct {
		const char *hdr;
		bool gz;
	} cases[] = {
		{"gzip", true},
		{"gzip, deflate, br, zstd", true},
		{"deflate, br", false},
		{"", false},
		{"GZIP", true},
		{"x-gzip", true},
		{"*", true},
		{"*;q=0", false},
		{"gzip;q=0", false},
		{"gzip;q=0, *", false}, /* gzip named with q=0 wins over "*" */
		{"gzip; q=0.001", true},
		{"gzip;q=0.000", false},
		{"gzip;Q=1.0", true},
		{"br;q=1, gzip;q=0.5", true},
		{"gzip;q=2", false},      /* malformed: not listed */
		{"gzip;q=0.5x", false},   /* malformed */
		{"gzip;q=0.1234", false}, /* four decimals: malformed */
		{"gzip;q=1.5", false},
		{"  gzip  ;  q=0.8  ", true},
		{"gzipx", false},
		{"gzip;level=9", true}, /* other parameters are ignored */
		{",,gzip,,", true},
		{"identity;q=1, *;q=0.1", true},
		{"gzip;q=0, gzip;q=0.5", true}, /* the best weight of a repeated coding */
		{";q=1", false},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		if (www_accepts_gzip(cases[i].hdr) != cases[i].gz)
			TAP_FAIL("'%s': got %d, want %d", cases[i].hdr, !cases[i].gz, cases[i].gz);
}

TEST(if_none_match)
{
	static const struct {
		const char *hdr, *etag;
		bool match;
	} cases[] = {
		{"\"abc\"", "\"abc\"", true},
		{"W/\"abc\"", "\"abc\"", true}, /* weak comparison */
		{"\"x\", \"abc\"", "\"abc\"", true},
		{"\"x\",W/\"abc\"", "\"abc\"", true},
		{"*", "\"abc\"", true},
		{"  *  ", "\"abc\"", true},
		{"\"abcd\"", "\"abc\"", false},
		{"\"ab\"", "\"abc\"", false},
		{"abc", "\"abc\"", false}, /* unquoted: not an entity-tag */
		{"\"x\", abc", "\"abc\"", false},
		{"\"abc", "\"abc\"", false}, /* unterminated */
		{"", "\"abc\"", false},
		{"\"*\"", "\"abc\"", false},
		{"\"abc.gz\"", "\"abc\"", false}, /* the other representation's */
		{"\"abc\"", "\"abc.gz\"", false},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		if (www_etag_matches(cases[i].hdr, cases[i].etag) != cases[i].match)
			TAP_FAIL("'%s' vs '%s': got %d, want %d", cases[i].hdr, cases[i].etag,
				 !cases[i].match, cases[i].match);
}

TEST(routes)
{
	size_t n;
	const struct www_asset *t = www_asset_table(&n);
	const struct www_asset *index = &t[0];

	CHECK(n >= 1);
	CHECK_STR(index->path, "/");
	CHECK(www_asset_find("/") == index);
	CHECK(www_asset_find("/builders") == index);
	CHECK(www_asset_find("/builders/hello") == index);
	CHECK(www_asset_find("/builders/hello/builds") == index);
	CHECK(www_asset_find("/buildersx") == NULL);
	CHECK(www_asset_find("/logs/12") == index); /* slice "uilog" */
	CHECK(www_asset_find("/logs") == index);
	CHECK(www_asset_find("/logsx/1") == NULL);
	CHECK(www_asset_find("/builders/b/builds/3/steps/compile/logs/stdio") == index);
	/* slice "uiclassic" */
	CHECK(www_asset_find("/waterfall") == index);
	CHECK(www_asset_find("/console") == index);
	CHECK(www_asset_find("/grid") == index);
	CHECK(www_asset_find("/force") == index);
	CHECK(www_asset_find("/force/force") == index);
	CHECK(www_asset_find("/gridx") == NULL);
	CHECK(www_asset_find("/builders/hello/builds/3") == index); /* slice "uibuild" */
	CHECK(www_asset_find("/builds/42") == index);
	CHECK(www_asset_find("/builds") == index);
	CHECK(www_asset_find("/buildsx") == NULL);
	CHECK(www_asset_find("/assets/chunk.0000000000000000.js") == NULL);
	CHECK(www_asset_find("/workers") == index); /* slice "uimisc" */
	CHECK(www_asset_find("/workers/w1") == index);
	CHECK(www_asset_find("/workersx") == NULL);
	CHECK(www_asset_find("/requests") == index);
	CHECK(www_asset_find("/changes") == index); /* slice "uichanges" */
	CHECK(www_asset_find("/changes/7") == index);
	CHECK(www_asset_find("/changesx") == NULL);
	CHECK(www_asset_find("/schedulers") == index);
	CHECK(www_asset_find("/nosuch") == NULL);
	CHECK(www_asset_find("") == NULL);
	CHECK(www_asset_find("/assets/") == NULL);
	CHECK(www_asset_find("/assets/app.0000000000000000.js") == NULL);
	CHECK(www_asset_find("/assets") == NULL);
	for (size_t i = 1; i < n; i++) {
		CHECK(www_asset_find(t[i].path) == &t[i]);
		CHECK(!strncmp(t[i].path, "/assets/", 8));
	}
}

static uint32_t test_crc32(const unsigned char *p, size_t n)
{
	uint32_t c = 0xffffffffu;
	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & -(c & 1));
	}
	return ~c;
}

static uint32_t test_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The ETag embed-www.py must have given data: "\"" + 16 hex of SHA-256 + "\"". */
static void test_etag_of(const unsigned char *data, size_t len, char *out, size_t outlen)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) || mdlen < 8) {
		snprintf(out, outlen, "(sha256 failed)");
		return;
	}
	snprintf(out, outlen, "\"%02x%02x%02x%02x%02x%02x%02x%02x\"", md[0], md[1], md[2], md[3],
		 md[4], md[5], md[6], md[7]);
}

TEST(bundle)
{
	size_t n;
	const struct www_asset *t = www_asset_table(&n);
	char want[64], want_gz[64];

	/* index.html, app.js, app.css, then the chunks views load with import() */
	CHECK(n >= 3);
	for (size_t i = 0; i < n; i++) {
		const struct www_asset *a = &t[i];
		test_etag_of(a->data, a->len, want, sizeof(want));
		CHECK_STR(a->etag, want);
		snprintf(want_gz, sizeof(want_gz), "%.*s.gz\"", (int)strlen(want) - 1, want);
		CHECK_STR(a->etag_gz, want_gz);
		CHECK(a->immutable == (i != 0));
		/* hash-named: the name carries the same hash as the ETag */
		if (i) {
			char frag[32];
			snprintf(frag, sizeof(frag), ".%.16s.", want + 1);
			if (!strstr(a->path, frag))
				TAP_FAIL("'%s' is not named by its hash %s", a->path, want);
			/* index.html references app.js and app.css, app.js the chunks
			 * (relative to /assets/, under their hash names) */
			const struct www_asset *by = i < 3 ? &t[0] : &t[1];
			const char *ref = i < 3 ? a->path : a->path + 8;
			if (!memmem(by->data, by->len, ref, strlen(ref)))
				TAP_FAIL("'%s' does not reference '%s'", by->path, a->path);
			if (i >= 3 && (strncmp(a->path, "/assets/chunk.", 14) ||
				       strcmp(a->ctype, "text/javascript; charset=utf-8")))
				TAP_FAIL("'%s' is not a JavaScript chunk", a->path);
		}
		/* the gzip form decompresses to the data: header, CRC-32 and size;
		 * index.html is a template, rendered per master, never gzipped */
		CHECK((a->gz != NULL) == (i != 0));
		if (a->gz) {
			CHECK(a->gz_len >= 18 && a->gz_len < a->len);
			CHECK(a->gz[0] == 0x1f && a->gz[1] == 0x8b && a->gz[2] == 8);
			CHECK(test_le32(a->gz + a->gz_len - 4) == (uint32_t)a->len);
			CHECK(test_le32(a->gz + a->gz_len - 8) == test_crc32(a->data, a->len));
		}
	}
	CHECK(!strcmp(t[0].ctype, "text/html; charset=utf-8"));
	CHECK(strstr(t[1].path, ".js") && !strcmp(t[1].ctype, "text/javascript; charset=utf-8"));
	CHECK(strstr(t[2].path, ".css") && !strcmp(t[2].ctype, "text/css; charset=utf-8"));
	/* the bundle's marks were filled by embed-www.py, the title's are left for www.c */
	CHECK(!memmem(t[0].data, t[0].len, "{{app.", 6));
	CHECK(memmem(t[0].data, t[0].len, "<title>{{title}}</title>", 24) != NULL);
}

TEST(index_render)
{
	struct buf b;
	char etag[WWW_ETAG_SIZE], want[64];

	buf_init(&b, 1u << 20);
	CHECK_INT(www_index_render("Tom & <Jerry> \"CI\"", "https://x.org/?a=1&b='2'", &b, etag),
		  0);
	CHECK(strstr(b.ptr, "<title>Tom &amp; &lt;Jerry&gt; &quot;CI&quot;</title>") != NULL);
	CHECK(!strstr(b.ptr, "{{title"));
	if (www_built())
		CHECK(strstr(b.ptr, "data-title-url=\"https://x.org/?a=1&amp;b=&#39;2&#39;\"") !=
		      NULL);
	test_etag_of((const unsigned char *)b.ptr, b.len, want, sizeof(want));
	CHECK_STR(etag, want); /* the hash of the bytes sent */
	char etag2[WWW_ETAG_SIZE];
	buf_reset(&b);
	CHECK_INT(www_index_render("Other", NULL, &b, etag2), 0);
	CHECK(strcmp(etag, etag2) != 0); /* another title, another ETag */
	CHECK(strstr(b.ptr, "<title>Other</title>") != NULL);
	buf_release(&b);

	/* past its cap the page is refused, never cut */
	buf_init(&b, 64);
	CHECK_INT(www_index_render("Kiln", NULL, &b, etag), -E2BIG);
	buf_release(&b);
}

TEST(budget)
{
	size_t n, total = 0;
	const struct www_asset *t = www_asset_table(&n);
	for (size_t i = 0; i < n; i++) {
		printf("# %s: %zu bytes, %zu gzipped%s\n", t[i].path, t[i].len, t[i].gz_len,
		       i < 3 ? "" : " (loaded on demand: not counted)");
		if (i < 3) /* index.html, app.js, app.css: what every page loads */
			total += t[i].gz ? t[i].gz_len : t[i].len;
	}
	printf("# core bundle: %zu bytes gzipped (budget %u)\n", total, WWW_CORE_BUDGET_GZ);
	CHECK(total <= WWW_CORE_BUDGET_GZ);
}

int main(void)
{
	RUN(accept_encoding);
	RUN(if_none_match);
	RUN(routes);
	RUN(index_render);
	if (www_built()) {
		RUN(bundle);
		RUN(budget);
	} else {
		/* skipped, so counted (and failed under CI=true) by scripts/check */
		printf("ok %d - bundle # SKIP kiln was built without its web UI\n", ++tap_n);
		printf("ok %d - budget # SKIP kiln was built without its web UI\n", ++tap_n);
	}
	return tap_done();
}
