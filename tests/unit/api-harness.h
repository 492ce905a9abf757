/*
 * The shared harness of the REST API unit tests (tests/unit/test-api-*.c):
 * a real master (loop, SQLite database in a throwaway basedir, http_server
 * on loopback port 0) on the main thread, the test points in a client
 * thread that talks HTTP to it with libcurl, one connection per request.
 *
 *   static void client(void) { RUN(shapes); }
 *   int main(void)
 *   {
 *           struct api_harness h = {.name = "users", .client = client};
 *           return API_HARNESS_MAIN(&h);
 *   }
 *
 * A failure the harness sees (no answer, not JSON, a status not 200 in
 * api_get_ok) fails the running test point of the including file.
 */
#ifndef KILN_TESTS_API_HARNESS_H
#define KILN_TESTS_API_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "tap.h"

struct config;
struct db;
struct master;
struct http_server;
struct ws_conn_ops;

struct api_harness {
	/* basedir /tmp/kiln-test-api-NAME-XXXXXX, master name "test:/NAME" */
	const char *name;
	/* the worker listener's ops; NULL: every worker is refused */
	const struct ws_conn_ops *ops;
	/* the process's alarm(); 0: 60 seconds */
	unsigned timeout_s;
	/* the master's config (its http and workers hosts are set to
	 * 127.0.0.1); NULL: an empty one */
	struct config *cfg;
	/* main thread, after the database is open and the master registered,
	 * before the HTTP server starts: fill_db(db, masterid), then setup
	 * (< 0 bails out; it says why) */
	void (*fill_db)(struct db *db, int64_t masterid);
	int (*setup)(struct master *m);
	/* the test points, on the client thread */
	void (*client)(void);
	/* loop thread, after client() returned, before the server stops */
	void (*teardown)(struct master *m);
};

/* The running master, its basedir (set before setup runs), its HTTP
 * server and ports (before client runs). */
extern struct master api_master;
extern struct http_server *api_srv;
extern char api_basedir[256];
extern int api_http_port, api_workers_port;

/* Asks the loop thread to stop the HTTP server (http_server_stop) and
 * returns at once. */
void api_stop_server(void);

/* Runs the harness; returns main()'s exit status (tap_done() included). */
int api_harness_main(const struct api_harness *h, void (*mark_failed)(void), int (*done)(void));

static inline void api_tap_failed_(void)
{
	tap_cur_failed = 1;
}

static inline int api_tap_done_(void)
{
	return tap_done();
}

#define API_HARNESS_MAIN(h) api_harness_main((h), api_tap_failed_, api_tap_done_)

/* api_call flags */
enum {
	API_CROSS_SITE = 1,  /* a POST as a cross-site browser sends it */
	API_ACCEPT_JSON = 2, /* an "Accept: application/json" header */
	API_MAY_FAIL = 4,    /* an answer that is not JSON is no failure (NULL) */
};

/* GET /api/v2/PATH (body NULL) or a JSON-RPC POST of body; *status set,
 * the answer parsed (NULL if it is not JSON), its raw text in *text
 * (free() it) when text is not NULL. */
json_t *api_call(const char *path, const char *body, int flags, long *status, char **text);

/* api_call with no flags and no raw text. */
json_t *api_req(const char *path, const char *body, long *status);

/* GET /api/v2/PATH that must answer 200 with JSON; _as with api_call flags. */
json_t *api_get_ok(const char *path);
json_t *api_get_ok_as(const char *path, int flags);

/* A JSON-RPC error answer's code and message ("" if none). */
int64_t api_rpc_code(json_t *d);
const char *api_rpc_msg(json_t *d);

/* Adds one buildset of scheduler on builder at branch (revision "abc") with
 * changes[0..nchanges), claimed and built by masterid at t, finished at
 * t + 1 with results (< 0: still running); returns the buildid. */
int64_t api_add_build(struct db *db, int64_t masterid, int64_t builder, const int64_t *changes,
		      size_t nchanges, const char *branch, const char *scheduler, double t,
		      int results);

/* Runs fn on the loop thread (which owns the master's database) and waits
 * for it: the client thread's reads and writes of the database. */
void api_on_loop(void (*fn)(void));

#endif
