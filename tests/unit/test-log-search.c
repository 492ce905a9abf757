/*
 * Unit tests for the log viewer's search (slice "uilog"): db_log_search()
 * over a real SQLite log of compressed chunks plus its in-memory tail, in
 * both directions, with the scan cap's "continue from" steps, and the
 * checks of GET /api/v2/logs/ID/search's arguments (api_log_search_parse).
 */
#include "tap.h"

#include <errno.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/xalloc.h"
#include "db/db.h"
#include "master/api-logs.h"

#define T_LINES 5000

static struct db *t_db;
static int64_t t_logid, t_textid;

/* A build with one step, its 's' log of T_LINES lines (several compressed
 * chunks and a tail) and a 't' log. */
static void t_setup(void)
{
	CHECK_INT(db_open(NULL, "sqlite::memory:", NULL, &t_db), 0);
	if (!t_db)
		return;
	int64_t masterid, builderid, workerid, bsid, brid, buildid, number, stepid, stepnum;
	CHECK_INT(db_master_register(t_db, "host:/basedir", &masterid), 0);
	CHECK_INT(db_builder_ensure(t_db, "b0", NULL, NULL, &builderid), 0);
	CHECK_INT(db_worker_ensure(t_db, "w0", &workerid), 0);
	struct db_sourcestamp ss = {.branch = "main", .revision = "abc", .codebase = ""};
	struct db_buildset_new bs = {
		.reason = "forced", .sourcestamps = &ss, .nsourcestamps = 1, .submitted_at = 1};
	CHECK_INT(db_buildset_add(t_db, &bs, &builderid, 1, &bsid, &brid), 0);
	CHECK_INT(db_request_claim(t_db, brid, masterid, 2), 0);
	CHECK_INT(db_build_add(t_db, builderid, brid, workerid, masterid, 3, &buildid, &number), 0);
	CHECK_INT(db_step_add(t_db, buildid, "s", &stepid, &stepnum), 0);
	CHECK_INT(db_log_add(t_db, stepid, "stdio", 's', &t_logid), 0);
	CHECK_INT(db_log_add(t_db, stepid, "text", 't', &t_textid), 0);

	struct buf b;
	buf_init(&b, 1u << 20);
	for (int i = 0; i < T_LINES; i++) {
		int r;
		if (i == 10 || i == 2500 || i == 4990)
			r = buf_addf(&b, "oline %d has a needle in it\n", i);
		else if (i == 3000)
			r = buf_addf(&b, "eline %d says MiXeD CaSe\n", i);
		else if (i == 200)
			r = buf_adds(&b, "hzzq marks the stream character\n");
		else
			r = buf_addf(&b, "oline %d of filler text, nothing to see here\n", i);
		CHECK_INT(r, 0);
		if (b.len > 4000 || i == T_LINES - 1) {
			CHECK_INT(db_log_append(t_db, t_logid, b.ptr, b.len), 0);
			buf_reset(&b);
		}
	}
	buf_release(&b);
	CHECK_INT(db_log_append(t_db, t_textid, "hzzq\nplain\n", 11), 0);
}

static int64_t t_find(const char *q, unsigned flags, int64_t from)
{
	int64_t line = -2, next = -2;
	int r = db_log_search(t_db, t_logid, q, strlen(q), flags, from, UINT64_MAX, &line, &next);
	if (r < 0)
		TAP_FAIL("db_log_search '%s': %s", q, err_str(r));
	if (next != -1)
		TAP_FAIL("no cap, yet next is %lld", (long long)next);
	return line;
}

TEST(search_forward_and_backward)
{
	struct db_log_info info;
	CHECK_INT(db_log_get(t_db, t_logid, &info), 0);
	CHECK_INT(info.num_lines, T_LINES);
	CHECK_INT(t_find("needle", 0, 0), 10);
	CHECK_INT(t_find("needle", 0, 10), 10);
	CHECK_INT(t_find("needle", 0, 11), 2500);
	CHECK_INT(t_find("needle", 0, 2501), 4990);
	CHECK_INT(t_find("needle", 0, 4991), -1);
	CHECK_INT(t_find("needle", 0, T_LINES + 100), -1);
	CHECK_INT(t_find("needle", DB_LOG_SEARCH_BACKWARD, T_LINES - 1), 4990);
	CHECK_INT(t_find("needle", DB_LOG_SEARCH_BACKWARD, 4990), 4990);
	CHECK_INT(t_find("needle", DB_LOG_SEARCH_BACKWARD, 4989), 2500);
	CHECK_INT(t_find("needle", DB_LOG_SEARCH_BACKWARD, 2499), 10);
	CHECK_INT(t_find("needle", DB_LOG_SEARCH_BACKWARD, 9), -1);
	/* lines nobody wrote: nothing */
	CHECK_INT(t_find("line 5000 ", 0, 0), -1);
	CHECK_INT(t_find("line 4999 ", 0, 0), 4999);
	CHECK_INT(t_find("line 0 ", DB_LOG_SEARCH_BACKWARD, T_LINES - 1), 0);
}

TEST(search_case_and_stream_character)
{
	CHECK_INT(t_find("mixed case", 0, 0), -1);
	CHECK_INT(t_find("mixed case", DB_LOG_SEARCH_ICASE, 0), 3000);
	CHECK_INT(t_find("MIXED CASE", DB_LOG_SEARCH_ICASE | DB_LOG_SEARCH_BACKWARD, 4999), 3000);
	CHECK_INT(t_find("MiXeD CaSe", 0, 0), 3000);
	/* an 's' log's stream character is not text: line 200 is stream 'h'
	 * then "zzq marks ...", so "hzz" must not match it */
	CHECK_INT(t_find("hzz", 0, 0), -1);
	CHECK_INT(t_find("hzz", DB_LOG_SEARCH_BACKWARD, 4999), -1);
	CHECK_INT(t_find("zzq", 0, 0), 200);
	CHECK_INT(t_find("HZZ", DB_LOG_SEARCH_ICASE, 0), -1);
	/* a 't' log has no stream character: its first byte is text */
	int64_t line = -2, next = -2;
	CHECK_INT(db_log_search(t_db, t_textid, "hzz", 3, 0, 0, UINT64_MAX, &line, &next), 0);
	CHECK_INT(line, 0);
	CHECK_INT(db_log_search(t_db, t_textid, "plain", 5, DB_LOG_SEARCH_BACKWARD, 1, UINT64_MAX,
				&line, &next),
		  0);
	CHECK_INT(line, 1);
}

/* With a tiny cap every request scans about one chunk and says where to go
 * on; following continue_from gets to the same answer, never going back. */
static int64_t t_find_capped(const char *q, unsigned flags, int64_t from, int *ret_steps)
{
	int64_t line = -1, next = from;
	int steps = 0;
	while (next >= 0 && steps < 1000) {
		int64_t at = next;
		int r = db_log_search(t_db, t_logid, q, strlen(q), flags, at, 1, &line, &next);
		if (r < 0) {
			TAP_FAIL("db_log_search: %s", err_str(r));
			return -3;
		}
		steps++;
		if (next >= 0 && ((flags & DB_LOG_SEARCH_BACKWARD) ? next >= at : next <= at))
			TAP_FAIL("continue_from %lld does not move on from %lld", (long long)next,
				 (long long)at);
		if (line >= 0)
			break;
	}
	*ret_steps = steps;
	return line;
}

TEST(search_scan_cap_continues)
{
	int steps = 0;
	CHECK_INT(t_find_capped("needle", 0, 11, &steps), 2500);
	CHECK(steps >= 2); /* line 2500 is in the second chunk */
	CHECK_INT(t_find_capped("needle", DB_LOG_SEARCH_BACKWARD, 4989, &steps), 2500);
	CHECK(steps > 2);
	CHECK_INT(t_find_capped("needle", 0, 4991, &steps), -1);
	CHECK_INT(t_find_capped("needle", DB_LOG_SEARCH_BACKWARD, 9, &steps), -1);
	CHECK_INT(t_find_capped("no such text", 0, 0, &steps), -1);
	CHECK(steps > 2);
	CHECK_INT(t_find_capped("no such text", DB_LOG_SEARCH_BACKWARD, T_LINES - 1, &steps), -1);
	CHECK(steps > 2);
}

TEST(search_errors)
{
	int64_t line = -2, next = -2;
	CHECK_INT(db_log_search(t_db, 99999, "x", 1, 0, 0, UINT64_MAX, &line, &next),
		  KILN_ENOTFOUND);
	CHECK_INT(db_log_search(t_db, t_logid, "", 0, 0, 0, UINT64_MAX, &line, &next), -EINVAL);
	CHECK_INT(db_log_search(t_db, t_logid, "a\nb", 3, 0, 0, UINT64_MAX, &line, &next), -EINVAL);
	CHECK_INT(db_log_search(t_db, t_logid, "a", 1, 0, -1, UINT64_MAX, &line, &next), -EINVAL);
	CHECK_INT(line, -2); /* untouched on failure */
}

TEST(search_args)
{
	struct api_log_search_args a;
	const char *err = NULL;
	CHECK_INT(api_log_search_parse("needle", NULL, NULL, NULL, &a, &err), 0);
	CHECK_STR(a.q, "needle");
	CHECK_INT(a.qlen, 6);
	CHECK_INT(a.from, -1);
	CHECK(!a.backward && !a.icase);
	CHECK_INT(api_log_search_parse("x", "42", "prev", "true", &a, &err), 0);
	CHECK_INT(a.from, 42);
	CHECK(a.backward && a.icase);
	CHECK_INT(api_log_search_parse("x", "0", "next", "0", &a, &err), 0);
	CHECK(!a.backward && !a.icase);

	err = NULL;
	CHECK_INT(api_log_search_parse(NULL, NULL, NULL, NULL, &a, &err), -EINVAL);
	CHECK(err && strstr(err, "'q'"));
	CHECK_INT(api_log_search_parse("", NULL, NULL, NULL, &a, &err), -EINVAL);
	char *big = xmalloc(KILN_LOG_SEARCH_MAX_QUERY + 2);
	memset(big, 'a', KILN_LOG_SEARCH_MAX_QUERY + 1);
	big[KILN_LOG_SEARCH_MAX_QUERY + 1] = '\0';
	CHECK_INT(api_log_search_parse(big, NULL, NULL, NULL, &a, &err), -EINVAL);
	CHECK(err && strstr(err, "too long"));
	big[KILN_LOG_SEARCH_MAX_QUERY] = '\0';
	CHECK_INT(api_log_search_parse(big, NULL, NULL, NULL, &a, &err), 0);
	free(big);
	CHECK_INT(api_log_search_parse("a\nb", NULL, NULL, NULL, &a, &err), -EINVAL);
	CHECK_INT(api_log_search_parse("x", "-1", NULL, NULL, &a, &err), -EINVAL);
	CHECK(err && strstr(err, "from"));
	CHECK_INT(api_log_search_parse("x", "12x", NULL, NULL, &a, &err), -EINVAL);
	CHECK_INT(api_log_search_parse("x", "", NULL, NULL, &a, &err), -EINVAL);
	CHECK_INT(api_log_search_parse("x", NULL, "up", NULL, &a, &err), -EINVAL);
	CHECK(err && strstr(err, "dir"));
	CHECK_INT(api_log_search_parse("x", NULL, "", NULL, &a, &err), -EINVAL);
	CHECK_INT(api_log_search_parse("x", NULL, NULL, "yes", &a, &err), -EINVAL);
	CHECK(err && strstr(err, "icase"));
}

int main(void)
{
	t_setup();
	RUN(search_forward_and_backward);
	RUN(search_case_and_stream_character);
	RUN(search_scan_cap_continues);
	RUN(search_errors);
	RUN(search_args);
	db_close(t_db);
	return tap_done();
}
