/*
 * Atom feeds (src/master/feeds.c): the XML text escaping (entities,
 * characters XML forbids, invalid UTF-8), the ETag, and the feed writer:
 * one entry per build, everything escaped, links percent-encoded, the
 * feed's <updated> the newest build's.
 */
#include "master/feeds.h"

#include "common/buf.h"

#include "tap.h"

#include <stdio.h>
#include <string.h>

static unsigned feeds_count(const char *hay, const char *needle)
{
	unsigned n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

static void feeds_check_xml(const char *in, size_t n, const char *want)
{
	struct buf b;
	buf_init(&b, 1024);
	CHECK_INT(feeds_add_xml(&b, in, n), 0);
	CHECK_INT(buf_addch(&b, '\0'), 0);
	CHECK_STR(b.ptr, want);
	buf_release(&b);
}

TEST(xml_escape)
{
	feeds_check_xml("a<b>&\"c'", 9, "a&lt;b&gt;&amp;&quot;c&#39;");
	feeds_check_xml("tab\tnl\ncr\r", 10, "tab\tnl\ncr\r");
	/* controls, NUL and DEL are not XML characters: dropped */
	feeds_check_xml("a\x01\x1b[31mb\x7f\0c", 11, "a[31mbc");
	/* valid UTF-8 kept, invalid replaced by U+FFFD per bad byte */
	feeds_check_xml("\xc3\xa9\xe4\xb8\xad", 5, "\xc3\xa9\xe4\xb8\xad");
	feeds_check_xml("\xff", 1, "\xef\xbf\xbd");
	feeds_check_xml("\xc0\xaf", 2, "\xef\xbf\xbd\xef\xbf\xbd"); /* overlong '/' */
	feeds_check_xml("\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"); /* surrogate */
	feeds_check_xml("\xe4\xb8", 2, "\xef\xbf\xbd\xef\xbf\xbd");                 /* truncated */
	feeds_check_xml("\xef\xbf\xbf", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"); /* U+FFFF */

	struct buf b;
	buf_init(&b, 4);
	CHECK(feeds_add_xml(&b, "&&&", 3) < 0); /* past the cap: an error, not a cut */
	buf_release(&b);
}

TEST(etag)
{
	char a[FEEDS_ETAG_SIZE], b[FEEDS_ETAG_SIZE];
	CHECK_INT(feeds_etag("abc", 3, a), 0);
	/* SHA-256("abc") = ba7816bf8f01cfea... */
	CHECK_STR(a, "\"ba7816bf8f01cfea\"");
	CHECK_INT(feeds_etag("abd", 3, b), 0);
	CHECK(strcmp(a, b) != 0);
}

TEST(render)
{
	json_t *builds =
		json_pack("[{s:i, s:i, s:i, s:b, s:i, s:f, s:s, s:s}, {s:i, s:i, s:i, s:b, s:i, "
			  "s:f, s:s, s:s}]",
			  "buildid", 12, "number", 3, "builderid", 1, "complete", 1, "results", 2,
			  "complete_at", 1764735418.0, "state_string", "failed test <x> & \x01",
			  "buildername", "lib c/\"x\"", "buildid", 11, "number", 2, "builderid", 1,
			  "complete", 1, "results", 0, "complete_at", 1764735000.0, "state_string",
			  "build successful", "buildername", "lib c/\"x\"");
	CHECK(builds != NULL);
	struct buf b;
	buf_init(&b, 1 << 16);
	struct feeds_meta meta = {.base_url = "http://127.0.0.1:8010",
				  .title = "Kiln & co",
				  .builder = "lib c/\"x\"",
				  .kind = FEEDS_FAILURES,
				  .now = 0};
	CHECK_INT(feeds_render(&b, &meta, builds), 0);
	CHECK_INT(buf_addch(&b, '\0'), 0);
	const char *s = b.ptr;
	static const char head[] = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
				   "<feed xmlns=\"http://www.w3.org/2005/Atom\">";
	CHECK(!strncmp(s, head, sizeof(head) - 1));
	CHECK_INT(feeds_count(s, "<entry>"), 2);
	CHECK_INT(feeds_count(s, "</entry>"), 2);
	CHECK(strstr(s, "<id>http://127.0.0.1:8010/feeds/failures.atom?builder=lib%20c%2F%22x%22</"
			"id>") != NULL);
	CHECK(strstr(s, "<title>Kiln &amp; co: failed builds of lib c/&quot;x&quot;</title>") !=
	      NULL);
	CHECK(strstr(s, "<id>http://127.0.0.1:8010/api/v2/builds/12</id>") != NULL);
	CHECK(strstr(s, "<title>lib c/&quot;x&quot; #3: failure</title>") != NULL);
	CHECK(strstr(s, "href=\"http://127.0.0.1:8010/builders/lib%20c%2F%22x%22/builds/3\"") !=
	      NULL);
	CHECK(strstr(s, "failed test &lt;x&gt; &amp; </summary>") != NULL);
	/* the feed's updated is the newest build's: 2025-12-03T04:16:58Z */
	CHECK(strstr(s, "</title>\n<updated>2025-12-03T04:16:58Z</updated>") != NULL);
	CHECK(strstr(s, "<updated>2025-12-03T04:10:00Z</updated>") != NULL);
	CHECK(strstr(s, "\x01") == NULL);
	CHECK(!strcmp(s + strlen(s) - 8, "</feed>\n"));

	/* no builds: a valid feed without entries, updated = now */
	buf_reset(&b);
	json_t *none = json_array();
	meta.builder = NULL;
	meta.kind = FEEDS_BUILDS;
	meta.now = 86400;
	CHECK_INT(feeds_render(&b, &meta, none), 0);
	CHECK_INT(buf_addch(&b, '\0'), 0);
	CHECK_INT(feeds_count(b.ptr, "<entry>"), 0);
	CHECK(strstr(b.ptr, "<id>http://127.0.0.1:8010/feeds/builds.atom</id>") != NULL);
	CHECK(strstr(b.ptr, "<updated>1970-01-02T00:00:00Z</updated>") != NULL);
	buf_release(&b);

	/* too small a buffer: an error */
	buf_init(&b, 256);
	CHECK(feeds_render(&b, &meta, builds) < 0);
	buf_release(&b);
	json_decref(none);
	json_decref(builds);
}

int main(void)
{
	RUN(xml_escape);
	RUN(etag);
	RUN(render);
	return tap_done();
}
