/*
 * Internals shared by the REST API files (api.c router, api-<resource>.c
 * handlers, api-rpc.c control calls, api-parse.c parsers).  Nothing
 * outside src/master/api*.c includes this.
 *
 * Adding a new API route: write a handler `void api_x_get(struct api_ctx *)`
 * (and/or an rpc handler) in the api-<resource>.c that owns the noun,
 * declare it below, and add one line to api_routes[] in api.c with its
 * pattern and the Buildbot endpoint list used in 404 messages.
 */
#ifndef KILN_MASTER_API_INT_H
#define KILN_MASTER_API_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "db/db.h"
#include "master/http.h"

struct buf;

#define API_MAX_SEGS 10

struct api_route;

struct api_ctx {
	struct http_req *req; /* borrowed */
	struct master *m;     /* borrowed */
	struct db *db;        /* borrowed: m->db */
	const char *rest;     /* path after "/api/v2/" (for "Invalid path: ...") */
	const struct api_route *route;
	const char *cap[API_MAX_SEGS]; /* the wildcard segments, in order (borrowed) */
	size_t ncap;
};

/* ---- ResultSpec: Buildbot's query parameters (api-parse.c) ---------------------------- */

struct api_rspec {
	struct db_filter *filters; /* owned array; values borrowed from args or owned below */
	char **filter_args;        /* owned: the query parameter each filter came from */
	size_t *values_alloc;      /* owned: allocated count of each filter's values */
	size_t nfilters, nfixed;   /* the first nfixed filters come from the path */
	size_t filters_alloc;      /* of filters, filter_args and values_alloc alike */
	const char **order;        /* owned array, strings borrowed */
	size_t norder, order_alloc;
	const char **fields; /* owned array, strings borrowed */
	size_t nfields, fields_alloc;
	const char **props; /* owned array, strings borrowed (builds only) */
	size_t nprops, props_alloc;
	int64_t limit, offset; /* limit < 0: none */
	char **owned;          /* strings owned by the spec (fixed filter values) */
	size_t nowned, owned_alloc;
};

/* Parses the query arguments for resource res.  Unknown operators are
 * ignored (as Buildbot does); errors give KILN_EPARSE and *ret_err, the
 * exact Buildbot 400 message (owned by the caller).  allow_props: accept
 * property= (builds).  The spec borrows strings from args. */
int api_rspec_parse(enum db_resource res, const struct http_arg *args, size_t nargs,
		    bool allow_props, struct api_rspec *ret, char **ret_err);
/* Adds an equality filter taken from the path (value copied). */
void api_rspec_add_eq(struct api_rspec *rs, const char *field, const char *value);
void api_rspec_add_eq_i64(struct api_rspec *rs, const char *field, int64_t value);
void api_rspec_release(struct api_rspec *rs);

/* ---- JSON-RPC envelope (api-parse.c) ---------------------------------------------------- */

struct api_rpc {
	json_t *doc;        /* owned: the whole request */
	json_t *id;         /* borrowed from doc */
	const char *method; /* borrowed from doc */
	json_t *params;     /* borrowed from doc: an object */
};

/* Validates content type and envelope.  On success 0 and *ret.  On error
 * returns the HTTP status (400) and sets *ret_reply to the error document
 * to send (owned by the caller). */
int api_rpc_parse(const char *content_type, const char *body, size_t len, struct api_rpc *ret,
		  json_t **ret_reply);
void api_rpc_release(struct api_rpc *rpc);
/* {"jsonrpc": "2.0", ["id": id,] "error": {"code": code, "message": msg}} */
json_t *api_rpc_error_doc(json_t *id, int code, const char *msg);

/* ---- replies (api.c) -------------------------------------------------------------------- */

/* A GET document: pretty (2-space, sorted keys) as text/plain, or compact
 * application/json when the client asked for it.  Steals doc. */
void api_reply_json(struct api_ctx *ctx, int status, json_t *doc);
/* The text api_reply_json() would send for doc (malloc'd, *ret_len bytes)
 * and its content type (static); doc is sorted in place, not stolen.  NULL
 * if jansson cannot encode it. */
char *api_json_text(struct api_ctx *ctx, json_t *doc, size_t *ret_len, const char **ret_ctype);
/* {"error": msg} as text/plain; charset=utf-8 */
void api_reply_error(struct api_ctx *ctx, int status, const char *msg);
void api_reply_errorf(struct api_ctx *ctx, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* 404 "Invalid path: <rest>" */
void api_invalid_path(struct api_ctx *ctx);
/* 404 "not found while getting from endpoint for <route's endpoints> ..." */
void api_not_found(struct api_ctx *ctx);
/* Answers a database failure (500) and logs it. */
void api_reply_db_error(struct api_ctx *ctx, int r);
/* JSON-RPC answers: result (stolen) or an error; application/json. */
void api_rpc_reply_result(struct api_ctx *ctx, json_t *id, json_t *result);
void api_rpc_reply_error(struct api_ctx *ctx, int status, json_t *id, int code, const char *msg);

/* Item post-processing before field selection (e.g. properties of builds). */
typedef void (*api_fix_fn)(struct api_ctx *ctx, const struct api_rspec *rs, json_t *item);

/* Parses the query for res, adds the path filters given as field/value
 * pairs (NULL-terminated), lists, and answers {"<key>": [...], "meta":
 * {...}}: one page (api_page_limit), streamed when it has more than
 * KILN_API_PIECE_ROWS items.  single: an entity URL (meta {}; 404 when
 * empty). */
void api_list(struct api_ctx *ctx, enum db_resource res, const char *key, bool single,
	      api_fix_fn fix, const char *const *path_filters);

/* Page size rules (docs/API.md "Paging"): no ?limit= gives
 * KILN_API_PAGE_DEFAULT rows, a larger one than KILN_API_PAGE_MAX is
 * lowered to it (Buildbot clients then see fewer items, with meta.total
 * counting what was sent, as for any page). */
int64_t api_page_limit(int64_t asked);

/* A collection answer streamed as the client reads (api.c): built from the
 * page's ids (taken, malloc'd) and rs (moved into it: *rs is left empty);
 * ctx is copied and its req must outlive the stream.  api_list_produce is
 * its http_produce_fn: each call asks for at most one piece of at most
 * KILN_API_PIECE_ROWS rows, renders rows until about
 * KILN_MAX_HTTP_RESPONSE_CHUNK bytes wait, and appends at most out->max
 * bytes; the text
 * over all calls is what api_reply_json() would send for the whole page.
 * api_list_stream_free is its http_free_fn. */
struct api_list_stream;
struct api_list_stream *api_list_stream_new(struct api_ctx *ctx, enum db_resource res,
					    const char *key, api_fix_fn fix, bool skip_props,
					    struct api_rspec *rs, int64_t *ids, size_t nids);
int api_list_produce(void *ud, struct buf *out);
/* Its pieces are read asynchronously (issue 14): api_list_produce returns
 * HTTP_PRODUCE_LATER while one is on its way, and fn(arg) is called when
 * it is in (by default http_stream_resume of ctx's request). */
void api_list_stream_on_ready(struct api_list_stream *st, void (*fn)(void *arg), void *arg);
void api_list_stream_free(void *ud);
/* The most memory the stream holds (charged to the answer memory cap). */
size_t api_list_stream_held(const struct api_list_stream *st);
/* How many of its rows the stream has read so far (tests). */
size_t api_list_stream_rows_read(const struct api_list_stream *st);

/* Looks up one row: returns 1 and *ret_id (the value of idfield), 0 if
 * none, or a negative error (already answered).  Filters as field/value
 * pairs, NULL-terminated. */
int api_lookup(struct api_ctx *ctx, enum db_resource res, const char *idfield,
	       const char *const *filters, int64_t *ret_id);
/* Fetches rows directly (no query args); new reference in *ret. */
int api_fetch(struct api_ctx *ctx, enum db_resource res, const char *const *filters, json_t **ret);
/* This master's row as GET masters/N renders it (new reference), NULL when
 * it cannot be read; on PostgreSQL from memory (the loop never waits). */
json_t *api_this_master(struct api_ctx *ctx);

/* Resolves a builder given by id or name: 1 found, 0 not found, < 0 answered error. */
int api_builder_id(struct api_ctx *ctx, const char *idname, int64_t *ret_id);

/*
 * The same reads for handlers that answer later (issue 14: on either
 * backend the database answers on a later loop turn).  The request is
 * deferred; cont(ctx, ..., arg) is called with a copy of ctx (its path
 * segments copied, the request given back) and may read again or answer.
 * A database error is answered 500 and a client gone meanwhile is skipped:
 * cont is not called then.  Filters as field/value pairs, NULL-terminated
 * (copied).
 *
 * api_fetch_then: the rows (borrowed for the call; an empty array when a
 * value does not fit its field, e.g. a name where a number goes).
 * api_lookup_then: the idfield of the first row; none: 404 answered
 * (api_not_found), cont not called.
 * api_builder_then: the builder named or numbered idname (a number is
 * taken as it is, without a read).
 */
/* A deferred request given back for the answer of its read: ctx (the
 * handler's copy) with the request in it; or NULL when the client has gone
 * (touch nothing of the master then: it may be stopping) or when r < 0 (a
 * database error: logged with err and answered 500 here). */
struct http_deferred;
struct api_ctx *api_deferred_ctx(struct http_deferred *d, struct api_ctx *ctx, int r,
				 const char *err);
/* A copy of src in dst that outlives the handler: its path segments copied
 * into cap (owned: api_ctx_unhold). */
void api_ctx_hold(struct api_ctx *dst, char *cap[API_MAX_SEGS], const struct api_ctx *src);
void api_ctx_unhold(struct api_ctx *ctx, char *cap[API_MAX_SEGS]);
typedef void (*api_rows_fn)(struct api_ctx *ctx, json_t *items, void *arg);
typedef void (*api_id_fn)(struct api_ctx *ctx, int64_t id, void *arg);
void api_fetch_then(struct api_ctx *ctx, enum db_resource res, const char *const *filters,
		    api_rows_fn cont, void *arg);
void api_lookup_then(struct api_ctx *ctx, enum db_resource res, const char *idfield,
		     const char *const *filters, api_id_fn cont, void *arg);
void api_builder_then(struct api_ctx *ctx, const char *idname, api_id_fn cont, void *arg);
/* Any read answered as a listing (a db_list_fn), for a handler that goes on
 * with its rows:
 *	struct api_wait *w = api_wait_new(ctx, cont, arg);
 *	api_wait_begin(ctx, w, db_..._async(ctx->db, ..., api_wait_answered, w));
 * cont(ctx, items, arg) as api_fetch_then's (not called when the client
 * has gone or on a database error, which is answered 500; arg is not
 * freed here); an error of the send is answered at once. */
struct api_wait;
struct api_wait *api_wait_new(struct api_ctx *ctx, api_rows_fn cont, void *arg);
void api_wait_answered(void *w, int r, json_t *items, int64_t total, const char *err);
void api_wait_begin(struct api_ctx *ctx, struct api_wait *w, int r);
/* Is s all decimal digits (a Buildbot "n:" segment)? */
bool api_is_num(const char *s);

/* ---- handlers ------------------------------------------------------------------------------ */

void api_root_get(struct api_ctx *ctx);
void api_builders_get(struct api_ctx *ctx);
void api_builder_get(struct api_ctx *ctx);
void api_builder_builds_get(struct api_ctx *ctx);
void api_builder_build_get(struct api_ctx *ctx);
void api_builder_build_steps_get(struct api_ctx *ctx);
void api_builder_requests_get(struct api_ctx *ctx);
void api_builder_workers_get(struct api_ctx *ctx);
/* GET lastbuilds: every builder's highest-numbered build matching the
 * query's builds filters, one request (slice "uibuild", docs/API.md) */
void api_lastbuilds_get(struct api_ctx *ctx);
void api_forceschedulers_get(struct api_ctx *ctx);
void api_forcescheduler_get(struct api_ctx *ctx);

/* Fixes a build row: properties filtered by ?property= (else {}). */
void api_builds_fix(struct api_ctx *ctx, const struct api_rspec *rs, json_t *item);
void api_builds_get(struct api_ctx *ctx);
void api_build_get(struct api_ctx *ctx);
void api_build_steps_get(struct api_ctx *ctx);
void api_build_step_get(struct api_ctx *ctx);
void api_build_step_logs_get(struct api_ctx *ctx);
void api_build_step_log_get(struct api_ctx *ctx);
void api_build_step_log_contents_get(struct api_ctx *ctx);
void api_build_step_log_raw_get(struct api_ctx *ctx);
void api_build_properties_get(struct api_ctx *ctx);
void api_step_get(struct api_ctx *ctx);
void api_steps_get(struct api_ctx *ctx);
void api_step_logs_get(struct api_ctx *ctx);
void api_step_log_get(struct api_ctx *ctx);
void api_step_log_contents_get(struct api_ctx *ctx);
void api_step_log_raw_get(struct api_ctx *ctx);

void api_log_get(struct api_ctx *ctx);
void api_log_contents_get(struct api_ctx *ctx);
void api_log_raw_get(struct api_ctx *ctx);
void api_log_search_get(struct api_ctx *ctx); /* slice "uilog": a Kiln extension */
/* artifacts (api-artifacts.c) */
void api_build_artifacts_get(struct api_ctx *ctx);
void api_artifact_get(struct api_ctx *ctx);
void api_artifact_download_get(struct api_ctx *ctx);
/* Parses a Range header value h for a file of size bytes: 1 and the
 * inclusive [*ret_first, *ret_last] for one satisfiable bytes range; 0 when
 * the whole file is to be sent (no, several or malformed ranges: RFC 9110
 * lets a server ignore them); -ERANGE when it cannot be satisfied (416). */
int api_artifact_range_parse(const char *h, int64_t size, int64_t *ret_first, int64_t *ret_last);
/* For a resolved logid (logs under steps): the same three answers. */
void api_log_reply(struct api_ctx *ctx, int64_t logid);
void api_log_contents_reply(struct api_ctx *ctx, int64_t logid);
void api_log_raw_reply(struct api_ctx *ctx, int64_t logid);

void api_workers_get(struct api_ctx *ctx);
void api_worker_get(struct api_ctx *ctx);
/* slice "uimisc": JSON-RPC pause and unpause on /workers/ID (api-workers.c) */
void api_worker_rpc(struct api_ctx *ctx, struct api_rpc *rpc);
void api_worker_builds_get(struct api_ctx *ctx);
void api_masters_get(struct api_ctx *ctx);
void api_master_get(struct api_ctx *ctx);

void api_requests_get(struct api_ctx *ctx);
void api_request_get(struct api_ctx *ctx);
void api_request_builds_get(struct api_ctx *ctx);
void api_buildsets_get(struct api_ctx *ctx);
void api_buildset_get(struct api_ctx *ctx);
void api_buildset_properties_get(struct api_ctx *ctx);
void api_sourcestamps_get(struct api_ctx *ctx);
void api_sourcestamp_get(struct api_ctx *ctx);

/* changes (api-changes.c) */
void api_changes_get(struct api_ctx *ctx);
void api_change_get(struct api_ctx *ctx);
void api_build_changes_get(struct api_ctx *ctx);
void api_changesources_get(struct api_ctx *ctx);
void api_changesource_get(struct api_ctx *ctx);
void api_changesource_rpc(struct api_ctx *ctx, struct api_rpc *rpc);
/* slice "uichanges": /changes/N/builds, /schedulers, JSON-RPC "enable" */
void api_change_builds_get(struct api_ctx *ctx);
void api_schedulers_get(struct api_ctx *ctx);
void api_scheduler_get(struct api_ctx *ctx);
void api_scheduler_rpc(struct api_ctx *ctx, struct api_rpc *rpc);
/* slice "console": GET /changes/builds?changeid=1,2 (api-changes.c) */
void api_changes_builds_get(struct api_ctx *ctx);

/* Schedulers (api-sched.c) */
struct config_scheduler;
/* The typed params of a force scheduler as Buildbot-shaped form fields. */
json_t *api_force_params_json(const struct config_scheduler *sc);
json_t *api_force_error_fields(const struct config_scheduler *sc, const char *err);
void api_force_reply_invalid(struct api_ctx *ctx, json_t *id, const struct config_scheduler *sc,
			     const char *err);
void api_tryschedulers_get(struct api_ctx *ctx);
void api_try_rpc(struct api_ctx *ctx, struct api_rpc *rpc);
void api_test_clock_get(struct api_ctx *ctx);
void api_test_clock_rpc(struct api_ctx *ctx, struct api_rpc *rpc);

/* Numbers over time and ETA (api-numbers.c) */
void api_builder_numbers_get(struct api_ctx *ctx);
void api_builder_number_get(struct api_ctx *ctx);
/* "eta" and "eta_at" on a running build (api_builds_fix calls it). */
void api_numbers_build_fix(struct api_ctx *ctx, json_t *item);
/* The same on a running step; "estimated_start" on a queued request. */
void api_numbers_step_fix(struct api_ctx *ctx, const struct api_rspec *rs, json_t *item);
void api_numbers_request_fix(struct api_ctx *ctx, const struct api_rspec *rs, json_t *item);
/* What api_numbers_request_fix reads first for a piece of request rows
 * (api.c's prefetch, issue 14): their queue positions and their builders'
 * running builds; done(arg) once they are in (numbers_queue_note). */
void api_numbers_request_prefetch(struct api_ctx *ctx, json_t *items, void (*done)(void *arg),
				  void *arg);

/* JSON-RPC (api-rpc.c) */
void api_force_rpc(struct api_ctx *ctx, struct api_rpc *rpc);
void api_build_rpc(struct api_ctx *ctx, struct api_rpc *rpc);
/* "rebuild" on builds/ID: a new buildset copying the build's (api-builds.c) */
void api_build_rebuild_rpc(struct api_ctx *ctx, struct api_rpc *rpc);
void api_request_rpc(struct api_ctx *ctx, struct api_rpc *rpc);

/* Test results (api-tests.c) */
void api_test_result_sets_get(struct api_ctx *ctx);
void api_test_result_set_get(struct api_ctx *ctx);
void api_build_test_result_sets_get(struct api_ctx *ctx);
void api_step_test_result_sets_get(struct api_ctx *ctx);
void api_builder_test_result_sets_get(struct api_ctx *ctx);
void api_test_results_get(struct api_ctx *ctx);
void api_builder_test_history_get(struct api_ctx *ctx);

/* Users (api-users.c, slice "users") */
void api_users_get(struct api_ctx *ctx);
void api_users_rpc(struct api_ctx *ctx, struct api_rpc *rpc); /* "add" */
void api_user_get(struct api_ctx *ctx);
void api_user_rpc(struct api_ctx *ctx, struct api_rpc *rpc); /* "update", "remove" */
void api_change_users_get(struct api_ctx *ctx);
void api_build_users_get(struct api_ctx *ctx); /* the blamelist's users */

#endif
