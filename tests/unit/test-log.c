/*
 * The log line formatter (common/log.c): the text format as before, the
 * JSON format (escaping, invalid UTF-8, the build/worker members, the cut
 * marker and the error suffix).
 */
#include "tap.h"

#include <string.h>
#include <sys/time.h>

#include "common/buf.h"
#include "common/log.h"

static const struct timeval tv0 = {.tv_sec = 1767323045, .tv_usec = 678000};

static struct buf b; /* the last line */

static char *line(enum log_format f, const char *msg, int full, const char *suffix)
{
	buf_release(&b);
	buf_init(&b, 1 << 20);
	size_t mlen = strlen(msg);
	if (log_format_line(&b, f, &tv0, LOG_INFO, "master", msg, mlen,
			    full == -2 ? (int)mlen : full, suffix) < 0)
		return NULL;
	return b.ptr;
}

TEST(text)
{
	CHECK_STR(line(LOG_FORMAT_TEXT, "build=12 builder=b: done", -2, NULL),
		  "2026-01-02T03:04:05.678Z info  master: build=12 builder=b: done\n");
	CHECK_STR(line(LOG_FORMAT_TEXT, "a\nb", -2, "boom"),
		  "2026-01-02T03:04:05.678Z info  master: a\\x0ab: boom\n");
	CHECK_STR(line(LOG_FORMAT_TEXT, "abc", 9000, NULL),
		  "2026-01-02T03:04:05.678Z info  master: abc... [9000 bytes, cut]\n");
}

TEST(json)
{
	CHECK_STR(line(LOG_FORMAT_JSON, "build=12 builder=b\"x number=3 worker=w1: started", -2,
		       NULL),
		  "{\"ts\":\"2026-01-02T03:04:05.678Z\",\"level\":\"info\",\"subsys\":\"master\","
		  "\"msg\":\"build=12 builder=b\\\"x number=3 worker=w1: started\","
		  "\"build\":12,\"builder\":\"b\\\"x\",\"worker\":\"w1\"}\n");
	/* control characters and invalid UTF-8 stay inside a valid string */
	CHECK_STR(line(LOG_FORMAT_JSON, "a\nb\tc\\ caf\xc3\xa9 \xff \xed\xa0\x80", -2, "e\"rr"),
		  "{\"ts\":\"2026-01-02T03:04:05.678Z\",\"level\":\"info\",\"subsys\":\"master\","
		  "\"msg\":\"a\\nb\\u0009c\\\\ caf\xc3\xa9 \\ufffd \\ufffd\\ufffd\\ufffd: "
		  "e\\\"rr\"}\n");
	/* a non-number build= is not a member; request=N is; only whole words */
	CHECK_STR(line(LOG_FORMAT_JSON, "xbuild=4 build=abc request=77", -2, NULL),
		  "{\"ts\":\"2026-01-02T03:04:05.678Z\",\"level\":\"info\",\"subsys\":\"master\","
		  "\"msg\":\"xbuild=4 build=abc request=77\",\"request\":77}\n");
	CHECK_STR(line(LOG_FORMAT_JSON, "(worker=w2) gone", -2, NULL),
		  "{\"ts\":\"2026-01-02T03:04:05.678Z\",\"level\":\"info\",\"subsys\":\"master\","
		  "\"msg\":\"(worker=w2) gone\",\"worker\":\"w2\"}\n");
	CHECK_STR(line(LOG_FORMAT_JSON, "x", -1, NULL),
		  "{\"ts\":\"2026-01-02T03:04:05.678Z\",\"level\":\"info\",\"subsys\":\"master\","
		  "\"msg\":\"x(unformattable log message)\"}\n");
	CHECK_STR(line(LOG_FORMAT_JSON, "abc", 9000, NULL),
		  "{\"ts\":\"2026-01-02T03:04:05.678Z\",\"level\":\"info\",\"subsys\":\"master\","
		  "\"msg\":\"abc... [9000 bytes, cut]\"}\n");
}

TEST(format_names)
{
	CHECK_INT(log_set_format_name("json"), 0);
	CHECK_INT(log_set_format_name("text"), 0);
	CHECK_INT(log_set_format_name("xml"), -1);
}

TEST(cap)
{
	struct buf small;
	buf_init(&small, 10);
	CHECK(log_format_line(&small, LOG_FORMAT_JSON, &tv0, LOG_WARN, "m", "long enough", 11, 11,
			      NULL) < 0);
	buf_release(&small);
}

int main(void)
{
	RUN(text);
	RUN(json);
	RUN(format_names);
	RUN(cap);
	buf_release(&b);
	return tap_done();
}
