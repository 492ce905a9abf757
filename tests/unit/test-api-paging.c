/*
 * Unit tests for the REST API's paging (api.c): the page size rules and
 * the streamed collection producer, driven directly on an in-memory
 * database: pieces bounded in rows and bytes, and the text they add up to
 * identical to the whole document api_reply_json() would send.
 */
#include "tap.h"
#include "wait.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/buf.h"
#include "common/limits.h"
#include "common/xalloc.h"
#include "db/db.h"
#include "master/api-int.h"

static struct db *db;
static uv_loop_t loop; /* the pieces are read asynchronously (issue 14) */
static bool piece_ready;

static void on_piece_ready(void *arg)
{
	(void)arg;
	piece_ready = true;
}

static bool is_piece_ready(void *arg)
{
	(void)arg;
	return piece_ready;
}

TEST(page_limit)
{
	CHECK_INT(api_page_limit(-1), KILN_API_PAGE_DEFAULT);
	CHECK_INT(api_page_limit(0), 0);
	CHECK_INT(api_page_limit(7), 7);
	CHECK_INT(api_page_limit(KILN_API_PAGE_MAX), KILN_API_PAGE_MAX);
	CHECK_INT(api_page_limit(KILN_API_PAGE_MAX + 1), KILN_API_PAGE_MAX);
	CHECK_INT(api_page_limit(INT64_MAX), KILN_API_PAGE_MAX);
}

static void add_changes(int n, size_t comment_len)
{
	char *comments = xmalloc(comment_len + 1);
	memset(comments, 'c', comment_len);
	comments[comment_len] = '\0';
	const char *files[] = {"a.c", "dir/b \"quoted\".c"};
	for (int i = 0; i < n; i++) {
		json_t *props = json_pack("{s:[i,s]}", "n", i, "Change");
		struct db_change_new c = {
			.author = "Ann <ann@example.org>",
			.comments = comments,
			.branch = i % 2 ? "main" : "dev",
			.revision = "0123456789abcdef0123456789abcdef01234567",
			.files = files,
			.nfiles = 2,
			.properties = props,
			.when_timestamp = 1700000000.0 + i % 7,
		};
		int64_t id, ssid;
		if (db_change_add(db, &c, &id, &ssid) < 0)
			TAP_FAIL("db_change_add: %s", db_errmsg(db));
		json_decref(props);
	}
	free(comments);
}

/* The unstreamed answer: the whole page listed at once, as before streaming. */
static char *whole_text(struct api_ctx *ctx, enum db_resource res, const char *key,
			const struct db_query *q)
{
	json_t *items = NULL;
	if (db_list(db, res, q, &items, NULL) < 0)
		TAP_FAIL("db_list: %s", db_errmsg(db));
	size_t n = json_array_size(items);
	json_t *doc = json_pack("{s:o,s:{s:I}}", key, items, "meta", "total", (json_int_t)n);
	size_t len;
	const char *ctype;
	char *text = api_json_text(ctx, doc, &len, &ctype);
	json_decref(doc);
	return text;
}

struct run {
	size_t calls, max_piece, max_rows;
	struct buf all;
};

/* Streams res ordered by order (may be NULL) in pieces of at most piece_max bytes. */
static void stream(struct api_ctx *ctx, enum db_resource res, const char *key, const char *order,
		   int64_t limit, int64_t offset, size_t piece_max, struct run *ret)
{
	struct api_rspec rs = {.limit = limit, .offset = offset};
	const char *ord[] = {order};
	struct db_query q = {.order = order ? ord : NULL,
			     .norder = order ? 1 : 0,
			     .limit = api_page_limit(limit),
			     .offset = offset};
	int64_t *ids = NULL;
	size_t nids = 0;
	if (db_list_ids(db, res, &q, &ids, &nids) < 0)
		TAP_FAIL("db_list_ids: %s", db_errmsg(db));
	struct api_list_stream *st =
		api_list_stream_new(ctx, res, key, NULL, false, &rs, ids, nids);
	api_list_stream_on_ready(st, on_piece_ready, NULL);
	*ret = (struct run){0};
	buf_init(&ret->all, 1u << 30);
	size_t read_before = 0;
	for (int more = 1; more > 0;) {
		struct buf piece;
		buf_init(&piece, piece_max);
		more = api_list_produce(st, &piece);
		CHECK(more >= 0);
		if (more == HTTP_PRODUCE_LATER) {
			/* a piece asked for: it comes on a later turn, never at once */
			CHECK(!piece_ready);
			if (!test_run_until(&loop, is_piece_ready, NULL, TEST_GUARD_MS))
				TAP_FAIL("the piece never came");
			piece_ready = false;
		}
		size_t read = api_list_stream_rows_read(st);
		if (read - read_before > ret->max_rows)
			ret->max_rows = read - read_before;
		read_before = read;
		if (piece.len > ret->max_piece)
			ret->max_piece = piece.len;
		CHECK(buf_add(&ret->all, piece.ptr, piece.len) == 0);
		buf_release(&piece);
		ret->calls++;
		if (ret->calls > 100000)
			TAP_FAIL("producer never ends");
	}
	api_list_stream_free(st);
}

static void check_same(enum db_resource res, const char *key, const char *accept, const char *order,
		       int64_t limit, int64_t offset, size_t piece_max)
{
	struct http_req req = {.path = "/api/v2/x", .accept = accept, .content_type = ""};
	struct api_ctx ctx = {.req = &req, .db = db};
	const char *ord[] = {order};
	struct db_query q = {.order = order ? ord : NULL,
			     .norder = order ? 1 : 0,
			     .limit = api_page_limit(limit),
			     .offset = offset};
	_cleanup_free_ char *want = whole_text(&ctx, res, key, &q);
	struct run run;
	stream(&ctx, res, key, order, limit, offset, piece_max, &run);
	CHECK(want != NULL);
	if (want && strcmp(run.all.ptr, want)) {
		size_t i = 0;
		while (want[i] && want[i] == run.all.ptr[i])
			i++;
		TAP_FAIL("%s %s: differs at byte %zu: streamed '%.40s' whole '%.40s'", key, accept,
			 i, run.all.ptr + i, want + i);
	}
	CHECK(run.max_piece <= piece_max);
	CHECK(run.max_rows <= KILN_API_PIECE_ROWS);
	buf_release(&run.all);
}

TEST(same_text_small)
{
	add_changes(5, 20);
	check_same(DB_CHANGES, "changes", "", NULL, -1, 0, KILN_MAX_HTTP_RESPONSE_CHUNK);
	check_same(DB_CHANGES, "changes", "application/json", NULL, -1, 0,
		   KILN_MAX_HTTP_RESPONSE_CHUNK);
	check_same(DB_CHANGES, "changes", "", "-changeid", 2, 1, KILN_MAX_HTTP_RESPONSE_CHUNK);
	check_same(DB_CHANGES, "changes", "", NULL, 0, 0, KILN_MAX_HTTP_RESPONSE_CHUNK);
	check_same(DB_CHANGES, "changes", "application/json", NULL, -1, 99,
		   KILN_MAX_HTTP_RESPONSE_CHUNK);
}

TEST(same_text_meta_first)
{
	/* "workers" sorts after "meta": the total comes before the items */
	for (int i = 0; i < 40; i++) {
		char name[32];
		snprintf(name, sizeof(name), "w%02d", i);
		int64_t id;
		if (db_worker_ensure(db, name, &id) < 0)
			TAP_FAIL("db_worker_ensure: %s", db_errmsg(db));
	}
	check_same(DB_WORKERS, "workers", "", NULL, -1, 0, KILN_MAX_HTTP_RESPONSE_CHUNK);
	check_same(DB_WORKERS, "workers", "application/json", "-name", -1, 0, 100);
	check_same(DB_WORKERS, "workers", "", NULL, 0, 0, 100);
}

TEST(pieces_bounded)
{
	/* 300 more changes: several pieces of at most KILN_API_PIECE_ROWS rows each */
	add_changes(300, 200);
	struct http_req req = {.path = "/api/v2/changes", .accept = "", .content_type = ""};
	struct api_ctx ctx = {.req = &req, .db = db};
	struct run run;
	stream(&ctx, DB_CHANGES, "changes", NULL, -1, 0, KILN_MAX_HTTP_RESPONSE_CHUNK, &run);
	CHECK(run.max_rows <= KILN_API_PIECE_ROWS);
	CHECK(run.calls >= 305 / KILN_API_PIECE_ROWS);
	CHECK(run.max_piece <= KILN_MAX_HTTP_RESPONSE_CHUNK);
	buf_release(&run.all);
	check_same(DB_CHANGES, "changes", "", "when_timestamp", -1, 0, 4096);
	check_same(DB_CHANGES, "changes", "application/json", "-branch", 250, 3, 1000);
}

TEST(big_rows)
{
	/* rows bigger than a piece: handed out over several calls, fewer rows per read */
	add_changes(10, 3 * KILN_MAX_HTTP_RESPONSE_CHUNK);
	check_same(DB_CHANGES, "changes", "", "-changeid", 40, 0, KILN_MAX_HTTP_RESPONSE_CHUNK);
	struct http_req req = {.path = "/api/v2/changes", .accept = "", .content_type = ""};
	struct api_ctx ctx = {.req = &req, .db = db};
	struct run run;
	stream(&ctx, DB_CHANGES, "changes", "-changeid", 10, 0, KILN_MAX_HTTP_RESPONSE_CHUNK, &run);
	/* each big row alone is > 3 pieces: the first read of 32 shrinks to 1..2 rows */
	CHECK(run.calls >= 30);
	buf_release(&run.all);
}

TEST(rows_by_id)
{
	int64_t ids[] = {3, 999999, 1, 2};
	json_t *items = NULL;
	CHECK_INT(db_list_rows(db, DB_CHANGES, ids, 4, NULL, &items), 0);
	CHECK_INT(json_array_size(items), 3); /* the missing one left out, the order kept */
	CHECK_INT(json_integer_value(json_object_get(json_array_get(items, 0), "changeid")), 3);
	CHECK_INT(json_integer_value(json_object_get(json_array_get(items, 2), "changeid")), 2);
	json_decref(items);
	int64_t many[DB_LIST_ROWS_MAX + 1] = {0};
	CHECK(db_list_rows(db, DB_CHANGES, many, DB_LIST_ROWS_MAX + 1, NULL, &items) < 0);
	struct db_query q = {.limit = -1};
	int64_t *got = NULL;
	size_t n = 0;
	CHECK(db_list_ids(db, DB_CHANGES, &q, &got, &n) < 0); /* a page needs a limit */
	free(got);
}

int main(void)
{
	if (uv_loop_init(&loop) != 0 || db_open(&loop, "sqlite::memory:", NULL, &db) < 0) {
		printf("Bail out! db_open: %s\n", db_open_errmsg());
		return 1;
	}
	RUN(page_limit);
	RUN(same_text_small);
	RUN(same_text_meta_first);
	RUN(pieces_bounded);
	RUN(big_rows);
	RUN(rows_by_id);
	db_close(db);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	return tap_done();
}
