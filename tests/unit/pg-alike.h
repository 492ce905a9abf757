/*
 * The same calls on two fresh databases, SQLite's and a real PostgreSQL
 * server's (issue 14 unit tests): open each on a test's loop, run one
 * script on both (each writes a transcript of its answers), and compare
 * the transcripts.  Include after tap.h, pg-test.h and wait.h.
 */
#pragma once

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "common/buf.h"
#include "db/db.h"

struct pg_alike_opened {
	bool done;
	int r;
	struct db *db;
};

static void pg_alike_on_open(void *arg, int r, struct db *db, const char *err)
{
	struct pg_alike_opened *o = arg;
	(void)err;
	o->done = true;
	o->r = r;
	o->db = db;
}

static bool pg_alike_opened(void *arg)
{
	return ((struct pg_alike_opened *)arg)->done;
}

/* url opened with db_open_async on loop (a TAP failure and NULL if not). */
static inline struct db *pg_alike_open(uv_loop_t *loop, const char *url)
{
	struct pg_alike_opened o = {0};
	if (db_open_async(loop, url, NULL, pg_alike_on_open, &o) < 0 ||
	    !test_run_until(loop, pg_alike_opened, &o, TEST_GUARD_MS) || o.r < 0) {
		TAP_FAIL("cannot open %s: %s", url, db_open_errmsg());
		return NULL;
	}
	return o.db;
}

/* One answer of a call, spelled out for the transcript. */
struct pg_alike_answer {
	bool done;
	char text[1024];
	int r;
	int64_t n, id;
};

static bool pg_alike_answered(void *arg)
{
	return ((struct pg_alike_answer *)arg)->done;
}

/* The answer of a call that returned send_r: never answered when it could
 * not be sent (that is the transcript's line then), never from inside the
 * call. */
static inline const char *pg_alike_wait(uv_loop_t *loop, struct db *db, int send_r,
					struct pg_alike_answer *a)
{
	if (send_r < 0) {
		CHECK(!a->done);
		snprintf(a->text, sizeof(a->text), "send r=%d err=%s", send_r, db_errmsg(db));
		a->r = send_r;
		return a->text;
	}
	CHECK(!a->done);
	if (!test_run_until(loop, pg_alike_answered, a, TEST_GUARD_MS))
		snprintf(a->text, sizeof(a->text), "no answer");
	return a->text;
}

/* A transcript's line: "what: text". */
static inline void pg_alike_line(struct buf *out, const char *what, const char *text)
{
	CHECK_INT(buf_addf(out, "%s: %s\n", what, text), 0);
}

/* script on lite, then on pg, each into a transcript; they must be the
 * same (both shown when not).  SQLite's transcript into *ret_lite (a
 * NUL-terminated copy, malloc'd) when ret_lite is not NULL. */
static inline void pg_alike_run(struct db *lite, struct db *pg,
				void (*script)(struct db *db, struct buf *out), char **ret_lite)
{
	struct buf a, b;
	buf_init(&a, 1u << 20);
	buf_init(&b, 1u << 20);
	script(lite, &a);
	script(pg, &b);
	CHECK_INT(buf_addch(&a, '\0'), 0);
	CHECK_INT(buf_addch(&b, '\0'), 0);
	if (strcmp(a.ptr, b.ptr)) {
		printf("# SQLite's answers:\n%s\n", a.ptr);
		printf("# PostgreSQL's answers:\n%s\n", b.ptr);
	}
	CHECK_STR(b.ptr, a.ptr);
	if (ret_lite)
		*ret_lite = strdup(a.ptr ? a.ptr : "");
	buf_release(&a);
	buf_release(&b);
}
