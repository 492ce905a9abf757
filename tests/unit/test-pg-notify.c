/*
 * Event lines between masters on a real PostgreSQL server (db_notify,
 * db_listen; src/db/db-pg-cluster.c, issue 14): two databases of one server
 * stand for two masters.  A line one sends reaches the other once its turn
 * commits, never the sender itself; lines past the turn's cap
 * (KILN_PG_MAX_NOTIFY_BYTES) are dropped, counted, and the other master is
 * told ("lost") so that its /ws subscribers resync.
 */
#include "tap.h"
#include "pg-test.h"
#include "wait.h"
#include "pg-alike.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "common/limits.h"
#include "db/db.h"

#define diag(...) (printf("# "), printf(__VA_ARGS__), printf("\n"))

static uv_loop_t loop;

struct heard {
	int lines, lost, mine;
	char last[64];
};

static void on_line(void *arg, const char *line)
{
	struct heard *h = arg;
	if (!strcmp(line, "lost"))
		h->lost++;
	else if (!strncmp(line, "x ", 2))
		h->lines++;
	snprintf(h->last, sizeof(h->last), "%.60s", line);
}

static void on_own(void *arg, const char *line)
{
	struct heard *h = arg;
	(void)line;
	h->mine++;
}

static bool heard_one(void *arg)
{
	return ((struct heard *)arg)->lines > 0;
}

static bool heard_lost(void *arg)
{
	return ((struct heard *)arg)->lost > 0;
}

TEST(lines_cross_and_a_drop_is_said)
{
	struct db *a = pg_alike_open(&loop, pg_test.url);
	struct db *b = pg_alike_open(&loop, pg_test.url);
	if (!a || !b)
		return;
	struct heard hb = {0}, ha = {0};
	CHECK_INT(db_listen(b, on_line, &hb), 0);
	CHECK_INT(db_listen(a, on_own, &ha), 0);
	/* b listens once its LISTEN is through: a line is sent again until heard */
	for (int i = 0; i < 50 && !hb.lines; i++) {
		CHECK_INT(db_notify(a, "x hello"), 0);
		test_run_until(&loop, heard_one, &hb, 200);
	}
	CHECK(hb.lines > 0);
	CHECK_STR(hb.last, "x hello");
	CHECK_INT(hb.lost, 0);
	CHECK_INT(ha.mine, 0); /* the sender's own lines are not handed back */
	/* a turn past the cap: the rest are dropped, counted, and said */
	char line[1001];
	memset(line, 'y', sizeof(line) - 1);
	line[0] = 'x';
	line[1] = ' ';
	line[sizeof(line) - 1] = '\0';
	size_t n = KILN_PG_MAX_NOTIFY_BYTES / (sizeof(line) - 1) + 10;
	for (size_t i = 0; i < n; i++)
		CHECK_INT(db_notify(a, line), 0);
	CHECK(db_notify_dropped(a) > 0);
	CHECK(test_run_until(&loop, heard_lost, &hb, TEST_GUARD_MS));
	CHECK_INT(hb.lost, 1);
	CHECK_INT(ha.mine, 0);
	/* refused: empty, too long, a newline */
	CHECK(db_notify(a, "") < 0);
	CHECK(db_notify(a, "x a\nb") < 0);
	char big[DB_NOTIFY_MAX_LINE + 2];
	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK(db_notify(a, big) < 0);
	db_close(a);
	db_close(b);
}

int main(int argc, char **argv)
{
	if (uv_loop_init(&loop) != 0)
		return 1;
	const char *why = argc > 1 ? pg_test_start(argv[1]) : "no scripts directory given";
	if (why) {
		diag("PostgreSQL: %s", why);
		CHECK(!"a PostgreSQL server for the test");
	} else {
		RUN(lines_cross_and_a_drop_is_said);
	}
	pg_test_cleanup();
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	return tap_done();
}
