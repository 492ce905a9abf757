/*
 * The REST API under /api/v2: Buildbot 3.7's resource names, shapes,
 * errors and quirks (see docs/API.md).  This file is the router (one table
 * of path patterns), the reply helpers and the generic "list a resource
 * with a ResultSpec" used by every api-<resource>.c handler.
 */
#define LOG_SUBSYS "api"

#include "master/api-int.h"
#include "master/apitoken.h" /* slice "tokens" */
#include "master/auth.h"     /* slice "weblogin" */
#include "master/master.h"
#include "master/push.h" /* slice "push" */

#include "common/buf.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/str.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/stats.h" /* slice "operator" */
#include "common/xalloc.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

/*
 * Patterns: segments separated by '/'; '#' matches a decimal id, '*' any
 * segment (an id or a name), everything else literally.  kw names the
 * wildcards for 404 messages: "numname|strname" picks the first name for a
 * numeric segment.
 */
struct api_route {
	const char *pattern;
	void (*get)(struct api_ctx *ctx);
	void (*rpc)(struct api_ctx *ctx, struct api_rpc *rpc);
	const char *kw[4];
	const char *endpoints; /* Buildbot's endpoint list, for 404 messages */
};

#define EP_BUILDER                                                                                 \
	"/builders/n:builderid,/builders/i:buildername,/masters/n:masterid/builders/n:builderid"
#define EP_BUILD                                                                                   \
	"/builds/n:buildid,/builders/n:builderid/builds/n:number,"                                 \
	"/builders/i:buildername/builds/n:number"
#define EP_STEP                                                                                    \
	"/steps/n:stepid,/builds/n:buildid/steps/i:step_name,/builds/n:buildid/steps/"             \
	"n:step_number,"                                                                           \
	"/builders/n:builderid/builds/n:build_number/steps/i:step_name,"                           \
	"/builders/n:builderid/builds/n:build_number/steps/n:step_number,"                         \
	"/builders/i:buildername/builds/n:build_number/steps/i:step_name,"                         \
	"/builders/i:buildername/builds/n:build_number/steps/n:step_number"
#define EP_LOG                                                                                     \
	"/logs/n:logid,/steps/n:stepid/logs/i:log_slug,"                                           \
	"/builds/n:buildid/steps/i:step_name/logs/i:log_slug,"                                     \
	"/builds/n:buildid/steps/n:step_number/logs/i:log_slug,"                                   \
	"/builders/n:builderid/builds/n:build_number/steps/i:step_name/logs/i:log_slug,"           \
	"/builders/n:builderid/builds/n:build_number/steps/n:step_number/logs/i:log_slug"
#define EP_LOGCHUNKS                                                                               \
	"/logchunks,/logs/n:logid/contents,/steps/n:stepid/logs/i:log_slug/contents,"              \
	"/builds/n:buildid/steps/i:step_name/logs/i:log_slug/contents,"                            \
	"/builds/n:buildid/steps/n:step_number/logs/i:log_slug/contents,"                          \
	"/builders/n:builderid/builds/n:build_number/steps/i:step_name/logs/i:log_slug/contents,"  \
	"/builders/n:builderid/builds/n:build_number/steps/n:step_number/logs/i:log_slug/contents"
#define EP_RAW "/logs/n:logid/raw,/steps/n:stepid/logs/i:log_slug/raw"
#define EP_WORKER "/workers/n:workerid,/workers/i:name"
#define EP_REQUEST "/buildrequests/n:buildrequestid"
#define EP_BUILDSET "/buildsets/n:bsid"
#define EP_MASTER "/masters/n:masterid"
#define EP_CHANGE "/changes/n:changeid"
#define EP_SSTAMP "/sourcestamps/n:ssid"
#define EP_FORCESCHED "/forceschedulers/i:schedulername"
#define EP_PROPS "/builds/n:buildid/properties,/buildsets/n:bsid/properties"

static const struct api_route api_routes[] = {
	{"builders", api_builders_get, NULL, {NULL}, "/builders"},
	{"lastbuilds", api_lastbuilds_get, NULL, {NULL}, "/lastbuilds"}, /* slice "uibuild" */
	{"builders/*", api_builder_get, NULL, {"builderid|buildername"}, EP_BUILDER},
	{"builders/*/builds", api_builder_builds_get, NULL, {"builderid|buildername"}, EP_BUILDER},
	{"builders/*/builds/#",
	 api_builder_build_get,
	 NULL,
	 {"builderid|buildername", "number"},
	 EP_BUILD},
	{"builders/*/builds/#/steps",
	 api_builder_build_steps_get,
	 NULL,
	 {"builderid|buildername", "build_number"},
	 EP_BUILD},
	{"builders/*/buildrequests",
	 api_builder_requests_get,
	 NULL,
	 {"builderid|buildername"},
	 EP_BUILDER},
	{"builders/*/workers",
	 api_builder_workers_get,
	 NULL,
	 {"builderid|buildername"},
	 EP_BUILDER},
	/* numbers over time (api-numbers.c): a Kiln extension */
	{"builders/*/numbers",
	 api_builder_numbers_get,
	 NULL,
	 {"builderid|buildername"},
	 EP_BUILDER},
	{"builders/*/numbers/*",
	 api_builder_number_get,
	 NULL,
	 {"builderid|buildername", "name"},
	 EP_BUILDER},

	{"builds", api_builds_get, NULL, {NULL}, "/builds"},
	{"steps", api_steps_get, NULL, {NULL}, "/steps"},
	{"builds/#", api_build_get, api_build_rpc, {"buildid"}, EP_BUILD},
	{"builds/#/steps", api_build_steps_get, NULL, {"buildid"}, EP_BUILD},
	{"builds/#/steps/*",
	 api_build_step_get,
	 NULL,
	 {"buildid", "step_number|step_name"},
	 EP_STEP},
	{"builds/#/steps/*/logs",
	 api_build_step_logs_get,
	 NULL,
	 {"buildid", "step_number|step_name"},
	 EP_STEP},
	{"builds/#/steps/*/logs/*",
	 api_build_step_log_get,
	 NULL,
	 {"buildid", "step_number|step_name", "log_slug"},
	 EP_LOG},
	{"builds/#/steps/*/logs/*/contents",
	 api_build_step_log_contents_get,
	 NULL,
	 {"buildid", "step_number|step_name", "log_slug"},
	 EP_LOGCHUNKS},
	{"builds/#/steps/*/logs/*/raw",
	 api_build_step_log_raw_get,
	 NULL,
	 {"buildid", "step_number|step_name", "log_slug"},
	 EP_RAW},
	{"builds/#/properties", api_build_properties_get, NULL, {"buildid"}, EP_PROPS},
	/* artifacts (api-artifacts.c): a Kiln extension */
	{"builds/#/artifacts",
	 api_build_artifacts_get,
	 NULL,
	 {"buildid"},
	 "/builds/n:buildid/artifacts"},
	{"artifacts/#", api_artifact_get, NULL, {"artifactid"}, "/artifacts/n:artifactid"},
	{"artifacts/#/download",
	 api_artifact_download_get,
	 NULL,
	 {"artifactid"},
	 "/artifacts/n:artifactid/download"},

	{"steps/#", api_step_get, NULL, {"stepid"}, EP_STEP},
	{"steps/#/logs", api_step_logs_get, NULL, {"stepid"}, EP_STEP},
	{"steps/#/logs/*", api_step_log_get, NULL, {"stepid", "log_slug"}, EP_LOG},
	{"steps/#/logs/*/contents",
	 api_step_log_contents_get,
	 NULL,
	 {"stepid", "log_slug"},
	 EP_LOGCHUNKS},
	{"steps/#/logs/*/raw", api_step_log_raw_get, NULL, {"stepid", "log_slug"}, EP_RAW},

	{"logs/#", api_log_get, NULL, {"logid"}, EP_LOG},
	{"logs/#/contents", api_log_contents_get, NULL, {"logid"}, EP_LOGCHUNKS},
	{"logs/#/raw", api_log_raw_get, NULL, {"logid"}, EP_RAW},
	{"logs/#/search", api_log_search_get, NULL, {"logid"}, "/logs/n:logid/search"}, /* uilog */

	{"workers", api_workers_get, NULL, {NULL}, "/workers"},
	{"workers/*", api_worker_get, api_worker_rpc, {"workerid|name"}, EP_WORKER},
	{"workers/*/builds", api_worker_builds_get, NULL, {"workerid|name"}, EP_WORKER},

	{"buildrequests", api_requests_get, NULL, {NULL}, "/buildrequests"},
	{"buildrequests/#", api_request_get, api_request_rpc, {"buildrequestid"}, EP_REQUEST},
	{"buildrequests/#/builds", api_request_builds_get, NULL, {"buildrequestid"}, EP_REQUEST},

	{"buildsets", api_buildsets_get, NULL, {NULL}, "/buildsets"},
	{"buildsets/#", api_buildset_get, NULL, {"bsid"}, EP_BUILDSET},
	{"buildsets/#/properties", api_buildset_properties_get, NULL, {"bsid"}, EP_PROPS},

	{"sourcestamps", api_sourcestamps_get, NULL, {NULL}, "/sourcestamps"},
	{"sourcestamps/#", api_sourcestamp_get, NULL, {"ssid"}, EP_SSTAMP},

	{"changes", api_changes_get, NULL, {NULL}, "/changes"},
	{"changes/builds", api_changes_builds_get, NULL, {NULL}, "/changes/builds"}, /* console */
	{"changes/#", api_change_get, NULL, {"changeid"}, EP_CHANGE},
	{"builds/#/changes", api_build_changes_get, NULL, {"buildid"}, EP_BUILD},
	{"changes/#/builds", api_change_builds_get, NULL, {"changeid"}, EP_CHANGE}, /* uichanges */
	{"schedulers", api_schedulers_get, NULL, {NULL}, "/schedulers"},            /* uichanges */
	{"schedulers/*",
	 api_scheduler_get,
	 api_scheduler_rpc,
	 {"schedulerid|name"},
	 "/schedulers/n:schedulerid,/schedulers/i:name"},
	{"changesources", api_changesources_get, NULL, {NULL}, "/changesources"},
	{"changesources/*",
	 api_changesource_get,
	 api_changesource_rpc,
	 {"changesourcename"},
	 "/changesources/i:changesourcename"},

	{"masters", api_masters_get, NULL, {NULL}, "/masters"},
	{"masters/#", api_master_get, NULL, {"masterid"}, EP_MASTER},

	{"forceschedulers", api_forceschedulers_get, NULL, {NULL}, "/forceschedulers"},
	{"forceschedulers/*",
	 api_forcescheduler_get,
	 api_force_rpc,
	 {"schedulername"},
	 EP_FORCESCHED},
	{"tryschedulers", api_tryschedulers_get, NULL, {NULL}, "/tryschedulers"},
	{"tryschedulers/*",
	 api_tryschedulers_get,
	 api_try_rpc,
	 {"schedulername"},
	 "/tryschedulers/i:schedulername"},
	{"test_result_sets", api_test_result_sets_get, NULL, {NULL}, "/test_result_sets"},
	{"test_result_sets/#",
	 api_test_result_set_get,
	 NULL,
	 {"test_result_setid"},
	 "/test_result_sets/n:test_result_setid"},
	{"test_result_sets/#/results",
	 api_test_results_get,
	 NULL,
	 {"test_result_setid"},
	 "/test_result_sets/n:test_result_setid/results"},
	{"builders/*/test_result_sets",
	 api_builder_test_result_sets_get,
	 NULL,
	 {"builderid|buildername"},
	 EP_BUILDER},
	{"builds/#/test_result_sets", api_build_test_result_sets_get, NULL, {"buildid"}, EP_BUILD},
	{"steps/#/test_result_sets", api_step_test_result_sets_get, NULL, {"stepid"}, EP_STEP},
	{"builders/*/test_history", /* Kiln's */
	 api_builder_test_history_get,
	 NULL,
	 {"builderid|buildername"},
	 EP_BUILDER},
	{"_test/clock", api_test_clock_get, api_test_clock_rpc, {NULL}, "/_test/clock"},
	/* users (api-users.c, slice "users"): Kiln's, in Buildbot's conventions */
	{"users", api_users_get, api_users_rpc, {NULL}, "/users"},
	{"users/*",
	 api_user_get,
	 api_user_rpc,
	 {"uid|identifier"},
	 "/users/n:uid,/users/i:identifier"},
	{"changes/#/users", api_change_users_get, NULL, {"changeid"}, EP_CHANGE},
	{"builds/#/users", api_build_users_get, NULL, {"buildid"}, EP_BUILD},
	/* API tokens (api-tokens.c, slice "tokens"): Kiln's */
	{"tokens", api_tokens_get, api_tokens_rpc, {NULL}, "/tokens"},
	{"tokens/#", api_not_found, api_token_rpc, {"tokenid"}, "/tokens/n:tokenid"},
	/* results pushed from outside (push.c, slice "push"): a Kiln extension */
	{"push/check", api_push_check_get, NULL, {NULL}, "/push/check"},
	{"push/latest", api_push_latest_get, NULL, {NULL}, "/push/latest"},
	{"push/#", api_push_get, NULL, {"pushid"}, "/push/n:pushid"},
};

bool api_is_num(const char *s);

/* Matches rest against the table; fills ctx->cap.  segs is a writable copy. */
static const struct api_route *api_route_find(struct api_ctx *ctx, char *segs)
{
	const char *seg[API_MAX_SEGS];
	size_t nseg = 0;

	for (char *p = segs;;) {
		if (nseg == API_MAX_SEGS)
			return NULL;
		seg[nseg++] = p;
		char *slash = strchr(p, '/');
		if (!slash)
			break;
		*slash = '\0';
		p = slash + 1;
	}
	for (size_t i = 0; i < nseg; i++)
		if (!*seg[i])
			return NULL; /* "builds/" or "builds//1" */

	for (size_t r = 0; r < ARRAY_SIZE(api_routes); r++) {
		const char *pat = api_routes[r].pattern;
		size_t i = 0, ncap = 0;
		bool ok = true;
		while (ok && *pat && i < nseg) {
			const char *end = strchr(pat, '/');
			size_t plen = end ? (size_t)(end - pat) : strlen(pat);
			if (plen == 1 && *pat == '#') {
				ok = api_is_num(seg[i]);
				ctx->cap[ncap++] = seg[i];
			} else if (plen == 1 && *pat == '*') {
				ctx->cap[ncap++] = seg[i];
			} else {
				ok = strlen(seg[i]) == plen && !strncmp(seg[i], pat, plen);
			}
			pat += plen + (end ? 1 : 0);
			i++;
		}
		if (ok && !*pat && i == nseg) {
			ctx->ncap = ncap;
			return &api_routes[r];
		}
	}
	return NULL;
}

/* ---- replies ------------------------------------------------------------------------ */

static bool api_wants_json(const struct api_ctx *ctx)
{
	return strstr(ctx->req->accept, "application/json") != NULL;
}

/*
 * Replies are dumped with sorted keys, as Buildbot does.  Rather than have
 * jansson sort every object (JSON_SORT_KEYS: an allocated key array, a qsort
 * and a hash lookup per key, for every object of every reply), objects are
 * put in key order here, which costs one pass of comparisons when they are
 * built in order already (db_list's items are), and dumped in insertion
 * order.  The output is the same bytes as with JSON_SORT_KEYS.
 */
struct api_key {
	const char *key;
	size_t len;
	json_t *val;
};

/* jansson's own JSON_SORT_KEYS order: bytes, then length. */
static int api_key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);
	return c ? c : (alen > blen) - (alen < blen);
}

static int api_key_qcmp(const void *a, const void *b)
{
	const struct api_key *x = a, *y = b;
	return api_key_cmp(x->key, x->len, y->key, y->len);
}

/* Re-inserts every member in key order (deleting and setting a key moves
 * it to the end of jansson's insertion order). */
static void api_object_sort(json_t *o)
{
	size_t n = json_object_size(o), i = 0;
	_cleanup_free_ struct api_key *keys = xmalloc(n * sizeof(*keys));
	for (void *it = json_object_iter(o); it && i < n; it = json_object_iter_next(o, it), i++)
		keys[i] = (struct api_key){json_object_iter_key(it), json_object_iter_key_len(it),
					   json_incref(json_object_iter_value(it))};
	qsort(keys, i, sizeof(*keys), api_key_qcmp);
	for (size_t k = 0; k < i; k++) {
		_cleanup_free_ char *key = xmemdup(keys[k].key, keys[k].len);
		json_object_deln(o, key, keys[k].len);
		json_object_setn_new_nocheck(o, key, keys[k].len, keys[k].val);
	}
}

static void api_json_sort(json_t *j)
{
	if (json_is_array(j)) {
		size_t i;
		json_t *v;
		json_array_foreach(j, i, v) if (json_is_object(v) || json_is_array(v))
			api_json_sort(v);
		return;
	}
	if (!json_is_object(j))
		return;
	const char *prev = NULL;
	size_t prevlen = 0;
	bool sorted = true;
	for (void *it = json_object_iter(j); it; it = json_object_iter_next(j, it)) {
		const char *k = json_object_iter_key(it);
		size_t klen = json_object_iter_key_len(it);
		json_t *v = json_object_iter_value(it);
		if (prev && api_key_cmp(prev, prevlen, k, klen) > 0)
			sorted = false;
		prev = k;
		prevlen = klen;
		if (json_is_object(v) || json_is_array(v))
			api_json_sort(v);
	}
	if (!sorted)
		api_object_sort(j);
}

struct api_out {
	char *p;
	size_t len, cap;
};

static int api_out_add(const char *buffer, size_t size, void *data)
{
	struct api_out *o = data;
	if (size > SIZE_MAX - 1 - o->len)
		return -1;
	ARRAY_GROW(o->p, o->len + size + 1, o->cap);
	memcpy(o->p + o->len, buffer, size);
	o->len += size; /* room for the final NUL is kept */
	return 0;
}

/* doc (sorted by api_json_sort) as text into a malloc'd string. */
static char *api_dump(const json_t *doc, size_t flags, size_t *ret_len)
{
	struct api_out o = {0};
	if (json_dump_callback(doc, api_out_add, &o, flags) < 0 || !o.p) {
		free(o.p);
		return NULL;
	}
	o.p[o.len] = '\0';
	*ret_len = o.len;
	return o.p;
}

char *api_json_text(struct api_ctx *ctx, json_t *doc, size_t *ret_len, const char **ret_ctype)
{
	bool compact = api_wants_json(ctx);
	size_t len = 0;
	api_json_sort(doc);
	char *s = api_dump(doc, compact ? JSON_COMPACT : JSON_INDENT(2), &len);
	if (!s)
		return NULL;
	*ret_len = len;
	*ret_ctype = compact ? "application/json; charset=utf-8" : "text/plain; charset=utf-8";
	return s;
}

void api_reply_json(struct api_ctx *ctx, int status, json_t *doc)
{
	size_t len = 0;
	const char *ctype = NULL;
	char *s = api_json_text(ctx, doc, &len, &ctype);
	json_decref(doc);
	if (!s) {
		api_reply_error(ctx, 500, "cannot encode JSON");
		return;
	}
	http_reply_take(ctx->req, status, ctype, s, len);
}

void api_reply_error(struct api_ctx *ctx, int status, const char *msg)
{
	json_t *o = json_object();
	json_object_set_new(o, "error", json_string(msg));
	char *s = json_dumps(o, 0);
	json_decref(o);
	http_reply_take(ctx->req, status, "text/plain; charset=utf-8", s, strlen(s));
}

void api_reply_errorf(struct api_ctx *ctx, int status, const char *fmt, ...)
{
	va_list ap;
	struct buf b;
	buf_init(&b, 1u << 16);
	va_start(ap, fmt);
	int r = buf_vaddf(&b, fmt, ap);
	va_end(ap);
	if (r < 0) {
		/* never an empty or cut message: say what happened instead */
		log_warn("error message for '%s' over %zu bytes, not sent", ctx->req->path, b.max);
		api_reply_error(ctx, status, "error message too long to send");
	} else {
		api_reply_error(ctx, status, b.ptr);
	}
	buf_release(&b);
}

void api_invalid_path(struct api_ctx *ctx)
{
	api_reply_errorf(ctx, 404, "Invalid path: %s", ctx->rest);
}

void api_not_found(struct api_ctx *ctx)
{
	const struct api_route *rt = ctx->route;
	struct buf b;

	/* appends fail sticky (buf.h): r says whether the message is whole */
	buf_init(&b, 1u << 16);
	int r = buf_addf(&b,
			 "not found while getting from endpoint for %s with arguments "
			 "ResultSpec(**{'filters': [], 'fields': None, 'properties': [], "
			 "'order': None, 'limit': None, 'offset': None}) and {",
			 rt ? rt->endpoints : "?");
	for (size_t i = 0; r >= 0 && rt && i < ctx->ncap && i < ARRAY_SIZE(rt->kw) && rt->kw[i];
	     i++) {
		const char *kw = rt->kw[i], *bar = strchr(kw, '|');
		bool num = api_is_num(ctx->cap[i]);
		int klen = bar ? (num ? (int)(bar - kw) : (int)strlen(bar + 1)) : (int)strlen(kw);
		const char *k = bar && !num ? bar + 1 : kw;
		r = buf_addf(&b, "%s'%.*s': ", i ? ", " : "", klen, k);
		if (r >= 0)
			r = num ? buf_adds(&b, ctx->cap[i]) : buf_addf(&b, "'%s'", ctx->cap[i]);
	}
	if (r >= 0)
		r = buf_adds(&b, "}");
	api_reply_error(ctx, 404, r >= 0 ? b.ptr : "not found");
	buf_release(&b);
}

void api_reply_db_error(struct api_ctx *ctx, int r)
{
	log_error("database error on '%s': %s (%s)", ctx->req->path, err_str(r),
		  db_errmsg(ctx->db));
	api_reply_error(ctx, 500, "database error");
}

void api_rpc_reply_result(struct api_ctx *ctx, json_t *id, json_t *result)
{
	json_t *doc = json_object();
	json_object_set(doc, "id", id);
	json_object_set_new(doc, "jsonrpc", json_string("2.0"));
	json_object_set_new(doc, "result", result ? result : json_null());
	char *s = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(doc);
	http_reply_take(ctx->req, 200, "application/json", s, strlen(s));
}

void api_rpc_reply_error(struct api_ctx *ctx, int status, json_t *id, int code, const char *msg)
{
	json_t *doc = api_rpc_error_doc(id, code, msg);
	char *s = json_dumps(doc, 0);
	json_decref(doc);
	http_reply_take(ctx->req, status, "application/json", s, strlen(s));
}

/* ---- listing -------------------------------------------------------------------------- */

static void api_select_fields(json_t *item, const struct api_rspec *rs)
{
	const char *key;
	json_t *val;
	void *tmp;

	if (!rs->nfields || !json_is_object(item))
		return;
	json_object_foreach_safe(item, tmp, key, val)
	{
		bool keep = false;
		for (size_t i = 0; i < rs->nfields && !keep; i++)
			keep = !strcmp(rs->fields[i], key);
		if (!keep)
			json_object_del(item, key);
	}
}

/* Finds which query filter holds a value of the wrong type (db_list only
 * says -EINVAL), for Buildbot's "invalid filter value for X". */
static const char *api_blame_filter(enum db_resource res, const struct api_rspec *rs)
{
	for (size_t i = rs->nfixed; i < rs->nfilters; i++) {
		if (db_filter_check(res, &rs->filters[i]) == -EINVAL)
			return rs->filter_args[i];
	}
	return NULL;
}

/* ---- collections: one page, streamed ------------------------------------------------ */

_Static_assert(KILN_API_PIECE_ROWS <= DB_LIST_ROWS_MAX, "a piece is read in one db_list_rows");
_Static_assert(KILN_API_PAGE_DEFAULT <= KILN_API_PAGE_MAX, "the default page fits the maximum");

int64_t api_page_limit(int64_t asked)
{
	if (asked < 0)
		return KILN_API_PAGE_DEFAULT;
	return asked > KILN_API_PAGE_MAX ? KILN_API_PAGE_MAX : asked;
}

enum api_list_phase { API_LIST_HEAD, API_LIST_ITEMS, API_LIST_DONE };

/*
 * A collection answer being written: the page's ids were read when the
 * request came (db_list_ids, bounded by the page size), and each call of
 * the producer reads at most one piece of rows by id, renders rows as the
 * whole document would show them until about one write's worth of text
 * waits (the rest of the piece waits in st->batch), and hands the text out
 * as the client takes it.  The envelope is Buildbot's {"<key>": [...], "meta": {"total":
 * N}} with the keys in sorted order, so "meta" comes first for keys that
 * sort after it (workers, steps, ...).
 */
struct api_list_stream {
	struct api_ctx ctx; /* copy of the handler's; cap unused; req lives until we are freed */
	struct api_rspec rs;
	enum db_resource res;
	const char *key; /* borrowed: static */
	api_fix_fn fix;
	bool skip_props, compact, meta_first;
	int64_t *ids; /* owned */
	size_t nids, next, emitted;
	size_t rows;        /* rows per read: KILN_API_PIECE_ROWS, fewer while rows are big */
	json_t *batch;      /* owned: rows read and not all rendered yet, or NULL */
	size_t batch_i;     /* of batch, the next row to render */
	size_t batch_text;  /* bytes rendered from batch */
	struct buf pending; /* text rendered and not handed out yet */
	size_t pending_off; /* of pending, bytes handed out */
	enum api_list_phase phase;
	/* issue 14: pieces are read asynchronously; ready(ready_arg) says the
	 * one asked for is in (http_stream_resume by default) */
	struct api_list_read *reading; /* in flight, or NULL */
	int failed;                    /* a read's error, 0 */
	void (*ready)(void *arg);
	void *ready_arg;
};

/* A piece's read in flight: orphaned (st NULL) if the stream goes first. */
struct api_list_read {
	struct api_list_stream *st;
	size_t n;
	json_t *items; /* read, while the fix function's own reads run */
};

/* What a fix function reads for a piece of rows before it runs (issue 14:
 * on the loop, as the rows): done(arg) once it is in (at once when there
 * is nothing to read).  NULL: nothing. */
typedef void (*api_prefetch_fn)(struct api_ctx *ctx, json_t *items, void (*done)(void *arg),
				void *arg);

static api_prefetch_fn api_prefetch_of(api_fix_fn fix)
{
	/* a queued request's estimated_start: its position and its builder's
	 * running builds (api-numbers.c) */
	return fix == api_numbers_request_fix ? api_numbers_request_prefetch : NULL;
}

static int api_list_head(struct api_list_stream *st)
{
	struct buf *b = &st->pending;
	if (st->compact)
		return st->meta_first ? buf_addf(b, "{\"meta\":{\"total\":%zu},\"%s\":[", st->nids,
						 st->key)
				      : buf_addf(b, "{\"%s\":[", st->key);
	return st->meta_first
		       ? buf_addf(b, "{\n  \"meta\": {\n    \"total\": %zu\n  },\n  \"%s\": [",
				  st->nids, st->key)
		       : buf_addf(b, "{\n  \"%s\": [", st->key);
}

static int api_list_tail(struct api_list_stream *st)
{
	struct buf *b = &st->pending;
	if (st->compact)
		return st->meta_first ? buf_adds(b, "]}")
				      : buf_addf(b, "],\"meta\":{\"total\":%zu}}", st->emitted);
	int r = buf_adds(b, st->emitted ? "\n  ]" : "]");
	if (r < 0)
		return r;
	return st->meta_first
		       ? buf_adds(b, "\n}")
		       : buf_addf(b, ",\n  \"meta\": {\n    \"total\": %zu\n  }\n}", st->emitted);
}

/* One item as it reads inside the document: after its separator, and
 * indented two levels when pretty (jansson escapes newlines in strings, so
 * every '\n' of the dump is layout). */
static int api_list_item(struct api_list_stream *st, json_t *item)
{
	struct buf *b = &st->pending;
	if (st->fix)
		st->fix(&st->ctx, &st->rs, item);
	api_select_fields(item, &st->rs);
	api_json_sort(item);
	size_t len = 0;
	_cleanup_free_ char *text =
		api_dump(item, st->compact ? JSON_COMPACT : JSON_INDENT(2), &len);
	if (!text)
		return -EINVAL;
	int r = st->compact ? buf_adds(b, st->emitted ? "," : "")
			    : buf_adds(b, st->emitted ? ",\n    " : "\n    ");
	for (const char *p = text, *end = text + len; r >= 0 && p < end;) {
		const char *nl = st->compact ? NULL : memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		r = buf_add(b, p, n);
		if (r >= 0 && nl)
			r = buf_adds(b, "\n    ");
		p += n + (nl ? 1 : 0);
	}
	if (r >= 0)
		st->emitted++;
	return r;
}

/* A piece of rows in (and what its fix function reads): the stream goes on. */
static void api_list_rows_in(struct api_list_read *rd, int r, json_t *items, const char *err)
{
	struct api_list_stream *st = rd->st;
	if (!st) {
		json_decref(items);
		free(rd);
		return;
	}
	st->reading = NULL;
	if (r < 0) {
		log_error("database error listing '%s': %s (%s)", st->ctx.req->path, err_str(r),
			  err ? err : "");
		st->failed = r;
	} else {
		st->batch = items;
		st->next += rd->n;
		st->batch_i = 0;
		st->batch_text = 0;
	}
	free(rd);
	st->ready(st->ready_arg);
}

static void api_list_prefetched(void *arg)
{
	struct api_list_read *rd = arg;
	json_t *items = rd->items;
	rd->items = NULL;
	api_list_rows_in(rd, 0, items, NULL);
}

static void api_list_on_rows(void *arg, int r, json_t *items, int64_t total, const char *err)
{
	struct api_list_read *rd = arg;
	struct api_list_stream *st = rd->st;
	(void)total;
	api_prefetch_fn pre = st && r >= 0 ? api_prefetch_of(st->fix) : NULL;
	if (pre && json_array_size(items)) {
		rd->items = items; /* rd stays st->reading: a stream freed meanwhile orphans it */
		pre(&st->ctx, items, api_list_prefetched, rd);
		return;
	}
	api_list_rows_in(rd, r, items, err);
}

/* Asks for the next piece of rows (one database read) into st->batch. */
static int api_list_read(struct api_list_stream *st)
{
	static const char *const no_props[] = {"properties", NULL};
	size_t n = st->nids - st->next;
	if (n > st->rows)
		n = st->rows;
	struct api_list_read *rd = xmalloc(sizeof(*rd));
	*rd = (struct api_list_read){.st = st, .n = n};
	int r = db_list_rows_async(st->ctx.db, st->res, st->ids + st->next, n,
				   st->skip_props ? no_props : NULL, api_list_on_rows, rd);
	if (r < 0) {
		log_error("database error listing '%s': %s (%s)", st->ctx.req->path, err_str(r),
			  db_errmsg(st->ctx.db));
		free(rd);
		return r;
	}
	st->reading = rd;
	return 0;
}

/* Renders rows of the batch into pending until it holds a write's worth;
 * the rest of the batch waits for the next call. */
static int api_list_render(struct api_list_stream *st)
{
	while (st->batch_i < json_array_size(st->batch) &&
	       st->pending.len - st->pending_off < KILN_MAX_HTTP_RESPONSE_CHUNK) {
		size_t before = st->pending.len;
		int r = api_list_item(st, json_array_get(st->batch, st->batch_i++));
		if (r < 0) {
			log_warn("item of '%s' over %u bytes or not encodable: answer cut",
				 st->ctx.req->path, KILN_API_PIECE_TEXT);
			return r;
		}
		st->batch_text += st->pending.len - before;
	}
	if (st->batch_i < json_array_size(st->batch))
		return 0;
	json_decref(st->batch);
	st->batch = NULL;
	/* big rows: fewer per read, so a batch stays near one write */
	if (st->batch_text > KILN_MAX_HTTP_RESPONSE_CHUNK && st->rows > 1)
		st->rows /= 2;
	else if (st->batch_text < KILN_MAX_HTTP_RESPONSE_CHUNK / 4 &&
		 st->rows < KILN_API_PIECE_ROWS)
		st->rows = st->rows * 2 > KILN_API_PIECE_ROWS ? KILN_API_PIECE_ROWS : st->rows * 2;
	return 0;
}

int api_list_produce(void *ud, struct buf *out)
{
	struct api_list_stream *st = ud;
	size_t start = out->len;
	if (st->failed)
		return st->failed;

	for (;;) {
		size_t have = st->pending.len - st->pending_off;
		if (have) {
			size_t n = buf_room(out) < have ? buf_room(out) : have;
			if (buf_add(out, st->pending.ptr + st->pending_off, n) < 0)
				return -E2BIG;
			st->pending_off += n;
			if (n < have)
				return 1; /* out is full */
		}
		buf_reset(&st->pending);
		st->pending_off = 0;
		if (st->phase == API_LIST_DONE)
			return 0;
		int r = 0;
		if (st->phase == API_LIST_HEAD) {
			r = api_list_head(st);
			st->phase = API_LIST_ITEMS;
		} else if (st->batch) {
			r = api_list_render(st);
		} else if (st->next < st->nids) {
			/* the next piece comes on a later turn: what is here goes now */
			if (!st->reading && (r = api_list_read(st)) < 0)
				return r;
			return out->len > start ? 1 : HTTP_PRODUCE_LATER;
		} else {
			r = api_list_tail(st);
			st->phase = API_LIST_DONE;
		}
		if (r < 0)
			return r;
	}
}

void api_list_stream_free(void *ud)
{
	struct api_list_stream *st = ud;
	if (!st)
		return;
	if (st->reading)
		st->reading->st = NULL; /* its answer is dropped */
	api_rspec_release(&st->rs);
	json_decref(st->batch);
	free(st->ids);
	buf_release(&st->pending);
	free(st);
}

static void api_list_resume_http(void *arg)
{
	struct api_list_stream *st = arg;
	http_stream_resume(st->ctx.req);
}

void api_list_stream_on_ready(struct api_list_stream *st, void (*fn)(void *arg), void *arg)
{
	st->ready = fn;
	st->ready_arg = arg;
}

struct api_list_stream *api_list_stream_new(struct api_ctx *ctx, enum db_resource res,
					    const char *key, api_fix_fn fix, bool skip_props,
					    struct api_rspec *rs, int64_t *ids, size_t nids)
{
	struct api_list_stream *st = xmalloc(sizeof(*st));
	*st = (struct api_list_stream){
		.ctx = *ctx,
		.rs = *rs,
		.res = res,
		.key = key,
		.fix = fix,
		.skip_props = skip_props,
		.compact = api_wants_json(ctx),
		.meta_first = strcmp(key, "meta") > 0,
		.ids = ids,
		.nids = nids,
		.rows = KILN_API_PIECE_ROWS,
	};
	st->ctx.ncap = 0;
	st->ready = api_list_resume_http;
	st->ready_arg = st;
	buf_init(&st->pending, KILN_API_PIECE_TEXT);
	*rs = (struct api_rspec){.limit = -1};
	return st;
}

size_t api_list_stream_held(const struct api_list_stream *st)
{
	return sizeof(*st) + st->nids * sizeof(*st->ids) + 2 * KILN_MAX_HTTP_RESPONSE_CHUNK;
}

size_t api_list_stream_rows_read(const struct api_list_stream *st)
{
	return st->next;
}

/* A query the database refused before running it, answered as Buildbot
 * answers: 400 naming what the client got wrong, else 500. */
static void api_list_refused(struct api_ctx *ctx, enum db_resource res, const struct api_rspec *rs,
			     int r)
{
	if (r == -EINVAL) {
		const char *bad = api_blame_filter(res, rs);
		if (bad)
			api_reply_errorf(ctx, 400, "invalid filter value for %s", bad);
		else
			api_reply_error(ctx, 400, "invalid filter value");
	} else if (r == KILN_EPARSE) {
		api_reply_error(ctx, 400, db_errmsg(ctx->db));
	} else {
		api_reply_db_error(ctx, r);
	}
}

/*
 * A collection request waiting for its database answer (issue 14): the
 * request is deferred, and the answer (on a later loop turn, on SQLite as
 * on PostgreSQL) writes the reply, unless the client has gone.
 */
struct api_list_wait {
	struct http_deferred *d;
	struct api_ctx ctx; /* the handler's, its path segments copied into cap */
	char *cap[API_MAX_SEGS];
	struct api_rspec rs;
	enum db_resource res;
	const char *key; /* static */
	api_fix_fn fix;
	bool skip_props;
	/* a page of one piece, answered whole with a Content-Length */
	struct api_list_stream *st;
	struct buf body;
	json_t *held; /* one object's row while its fix function reads */
	/* or a read for a handler that goes on (api_fetch_then, api_lookup_then) */
	api_rows_fn rows_cont;
	api_id_fn id_cont;
	void *cont_arg;
	const char *idfield; /* static */
};

void api_ctx_hold(struct api_ctx *dst, char *cap[API_MAX_SEGS], const struct api_ctx *src)
{
	*dst = *src;
	for (size_t i = 0; i < src->ncap; i++)
		dst->cap[i] = cap[i] = xstrdup(src->cap[i]);
}

void api_ctx_unhold(struct api_ctx *ctx, char *cap[API_MAX_SEGS])
{
	for (size_t i = 0; i < ctx->ncap; i++)
		free(cap[i]);
	ctx->ncap = 0;
}

static void api_list_wait_free(struct api_list_wait *w)
{
	api_list_stream_free(w->st);
	buf_release(&w->body);
	api_rspec_release(&w->rs);
	api_ctx_unhold(&w->ctx, w->cap);
	free(w);
}

static struct api_list_wait *api_list_wait_new(struct api_ctx *ctx, enum db_resource res,
					       const char *key, api_fix_fn fix, bool skip_props,
					       struct api_rspec *rs)
{
	struct api_list_wait *w = xmalloc(sizeof(*w));
	*w = (struct api_list_wait){
		.rs = *rs, .res = res, .key = key, .fix = fix, .skip_props = skip_props};
	api_ctx_hold(&w->ctx, w->cap, ctx);
	*rs = (struct api_rspec){.limit = -1};
	return w;
}

struct api_ctx *api_deferred_ctx(struct http_deferred *d, struct api_ctx *ctx, int r,
				 const char *err)
{
	struct http_req *req = http_deferred_req(d);
	ctx->req = req;
	if (!req)
		return NULL;
	if (r < 0) {
		log_error("database error on '%s': %s (%s)", req->path, err_str(r), err ? err : "");
		api_reply_error(ctx, 500, "database error");
		return NULL;
	}
	return ctx;
}

struct api_wait {
	struct http_deferred *d;
	struct api_ctx ctx; /* the handler's, its path segments copied into cap */
	char *cap[API_MAX_SEGS];
	api_rows_fn cont;
	void *arg;
};

struct api_wait *api_wait_new(struct api_ctx *ctx, api_rows_fn cont, void *arg)
{
	struct api_wait *w = xcalloc(1, sizeof(*w));
	api_ctx_hold(&w->ctx, w->cap, ctx);
	w->cont = cont;
	w->arg = arg;
	return w;
}

static void api_wait_free(struct api_wait *w)
{
	api_ctx_unhold(&w->ctx, w->cap);
	free(w);
}

void api_wait_answered(void *arg, int r, json_t *items, int64_t total, const char *err)
{
	struct api_wait *w = arg;
	(void)total;
	struct api_ctx *ctx = api_deferred_ctx(w->d, &w->ctx, r, err);
	if (ctx)
		w->cont(ctx, items, w->arg);
	json_decref(items);
	http_deferred_end(w->d);
	api_wait_free(w);
}

void api_wait_begin(struct api_ctx *ctx, struct api_wait *w, int r)
{
	if (r < 0) {
		api_reply_db_error(ctx, r);
		api_wait_free(w);
		return;
	}
	w->d = http_req_defer(ctx->req);
}

static struct api_ctx *api_list_wait_ctx(struct api_list_wait *w, int r, const char *err)
{
	return api_deferred_ctx(w->d, &w->ctx, r, err);
}

static void api_list_wait_end(struct api_list_wait *w, json_t *items)
{
	json_decref(items);
	http_deferred_end(w->d);
	api_list_wait_free(w);
}

/* A page of one piece: rendered into w->body as its rows come, then
 * answered whole.  Returns true when w is done with. */
static bool api_list_small_step(struct api_list_wait *w)
{
	struct api_ctx *ctx = api_list_wait_ctx(w, 0, NULL);
	if (!ctx)
		return true;
	int r;
	do
		r = api_list_produce(w->st, &w->body);
	while (r == 1 && buf_room(&w->body) > 0);
	if (r == HTTP_PRODUCE_LATER)
		return false; /* api_list_small_ready goes on */
	if (r != 0) {
		api_reply_error(ctx, 500, r > 0 ? "answer too large" : "cannot encode JSON");
		return true;
	}
	const char *ctype = api_wants_json(ctx) ? "application/json; charset=utf-8"
						: "text/plain; charset=utf-8";
	size_t len;
	char *text = buf_detach(&w->body, &len);
	http_reply_take(ctx->req, 200, ctype, text, len);
	return true;
}

static void api_list_small_ready(void *arg)
{
	struct api_list_wait *w = arg;
	if (api_list_small_step(w))
		api_list_wait_end(w, NULL);
}

static void api_list_page_answered(void *arg, int r, json_t *items, int64_t total, const char *err)
{
	struct api_list_wait *w = arg;
	(void)total;
	struct api_ctx *ctx = api_list_wait_ctx(w, r, err);
	if (!ctx) {
		api_list_wait_end(w, items);
		return;
	}
	size_t nids = json_array_size(items);
	int64_t *ids = xcalloc(nids ? nids : 1, sizeof(*ids));
	for (size_t i = 0; i < nids; i++)
		ids[i] = json_integer_value(json_array_get(items, i));
	json_decref(items);
	struct api_list_stream *st =
		api_list_stream_new(ctx, w->res, w->key, w->fix, w->skip_props, &w->rs, ids, nids);
	if (nids > KILN_API_PIECE_ROWS) {
		/* the rows as the client reads */
		const char *ctype = st->compact ? "application/json; charset=utf-8"
						: "text/plain; charset=utf-8";
		http_reply_stream_held(ctx->req, 200, ctype, NULL, api_list_produce,
				       api_list_stream_free, st, api_list_stream_held(st));
		api_list_wait_end(w, NULL);
		return;
	}
	/* one piece: answered whole, with a Content-Length */
	w->st = st;
	buf_init(&w->body, KILN_API_PIECE_TEXT + 4096); /* the piece and its envelope */
	api_list_stream_on_ready(st, api_list_small_ready, w);
	if (api_list_small_step(w))
		api_list_wait_end(w, NULL);
}

/* A collection: the page's ids first (asynchronously), then the rows as
 * the client reads. */
static void api_list_page(struct api_ctx *ctx, enum db_resource res, const char *key,
			  api_fix_fn fix, struct api_rspec *rs)
{
	struct db_query q = {
		.filters = rs->filters,
		.nfilters = rs->nfilters,
		.order = rs->order,
		.norder = rs->norder,
		.limit = api_page_limit(rs->limit),
		.offset = rs->offset,
	};
	/* builds' stored properties are shown only when ?property= asks; else
	 * they are not even read (the fix function puts {} in their place). */
	bool skip_props = res == DB_BUILDS && fix == api_builds_fix && rs->nprops == 0;
	struct api_list_wait *w = api_list_wait_new(ctx, res, key, fix, skip_props, rs);
	int r = db_list_ids_async(ctx->db, res, &q, api_list_page_answered, w);
	if (r < 0) {
		api_list_refused(ctx, res, &w->rs, r);
		api_list_wait_free(w);
		return;
	}
	w->d = http_req_defer(ctx->req);
}

static void api_list_single_fixed(struct api_list_wait *w, struct api_ctx *ctx, json_t *items);

static void api_list_single_prefetched(void *arg)
{
	struct api_list_wait *w = arg;
	json_t *items = w->held;
	w->held = NULL;
	api_list_single_fixed(w, api_list_wait_ctx(w, 0, NULL), items);
}

/* One object: {"<key>": [item], "meta": {}}, or 404. */
static void api_list_single_answered(void *arg, int r, json_t *items, int64_t total,
				     const char *err)
{
	struct api_list_wait *w = arg;
	(void)total;
	struct api_ctx *ctx = api_list_wait_ctx(w, r, err);
	api_prefetch_fn pre = ctx ? api_prefetch_of(w->fix) : NULL;
	if (pre && json_array_size(items)) {
		w->held = items;
		pre(ctx, items, api_list_single_prefetched, w);
		return;
	}
	api_list_single_fixed(w, ctx, items);
}

static void api_list_single_fixed(struct api_list_wait *w, struct api_ctx *ctx, json_t *items)
{
	if (ctx && json_array_size(items) == 0) {
		api_not_found(ctx);
	} else if (ctx) {
		size_t i;
		json_t *item;
		json_array_foreach(items, i, item)
		{
			if (w->fix)
				w->fix(ctx, &w->rs, item);
			api_select_fields(item, &w->rs);
		}
		json_t *doc = json_object();
		json_object_set(doc, w->key, items);
		json_object_set_new(doc, "meta", json_object());
		api_reply_json(ctx, 200, doc);
	}
	api_list_wait_end(w, items);
}

static void api_fetch_answered(void *arg, int r, json_t *items, int64_t total, const char *err)
{
	struct api_list_wait *w = arg;
	(void)total;
	struct api_ctx *ctx = api_list_wait_ctx(w, r, err);
	if (ctx && w->id_cont) {
		json_t *first = json_array_get(items, 0);
		if (first)
			w->id_cont(ctx, json_integer_value(json_object_get(first, w->idfield)),
				   w->cont_arg);
		else
			api_not_found(ctx);
	} else if (ctx) {
		w->rows_cont(ctx, items, w->cont_arg);
	}
	api_list_wait_end(w, items);
}

static void api_fetch_start(struct api_ctx *ctx, enum db_resource res, struct api_list_wait *w)
{
	struct db_query q = {.filters = w->rs.filters, .nfilters = w->rs.nfilters, .limit = -1};
	int r = db_list_async(ctx->db, res, &q, NULL, false, api_fetch_answered, w);
	if (r == -EINVAL) {
		/* a value that does not fit its field: no such row */
		if (w->id_cont) {
			api_not_found(ctx);
		} else {
			json_t *none = json_array();
			w->rows_cont(ctx, none, w->cont_arg);
			json_decref(none);
		}
	} else if (r < 0) {
		api_reply_db_error(ctx, r);
	}
	if (r < 0) {
		api_list_wait_free(w);
		return;
	}
	w->d = http_req_defer(ctx->req);
}

static struct api_list_wait *api_fetch_wait(struct api_ctx *ctx, enum db_resource res,
					    const char *const *filters)
{
	struct api_rspec rs = {.limit = -1};
	for (size_t i = 0; filters && filters[i]; i += 2)
		api_rspec_add_eq(&rs, filters[i], filters[i + 1]);
	return api_list_wait_new(ctx, res, NULL, NULL, false, &rs);
}

void api_fetch_then(struct api_ctx *ctx, enum db_resource res, const char *const *filters,
		    api_rows_fn cont, void *arg)
{
	struct api_list_wait *w = api_fetch_wait(ctx, res, filters);
	w->rows_cont = cont;
	w->cont_arg = arg;
	api_fetch_start(ctx, res, w);
}

void api_lookup_then(struct api_ctx *ctx, enum db_resource res, const char *idfield,
		     const char *const *filters, api_id_fn cont, void *arg)
{
	struct api_list_wait *w = api_fetch_wait(ctx, res, filters);
	w->id_cont = cont;
	w->cont_arg = arg;
	w->idfield = idfield;
	api_fetch_start(ctx, res, w);
}

void api_builder_then(struct api_ctx *ctx, const char *idname, api_id_fn cont, void *arg)
{
	long long id;
	if (api_is_num(idname) && str_to_i64(idname, &id) == 0) {
		cont(ctx, id, arg);
		return;
	}
	const char *f[] = {"name", idname, NULL};
	api_lookup_then(ctx, DB_BUILDERS, "builderid", f, cont, arg);
}

void api_list(struct api_ctx *ctx, enum db_resource res, const char *key, bool single,
	      api_fix_fn fix, const char *const *path_filters)
{
	struct api_rspec rs;
	char *err = NULL;
	int r = api_rspec_parse(res, ctx->req->args, ctx->req->nargs, res == DB_BUILDS, &rs, &err);
	if (r < 0) {
		api_reply_error(ctx, 400, err);
		free(err);
		return;
	}
	for (size_t i = 0; path_filters && path_filters[i]; i += 2)
		api_rspec_add_eq(&rs, path_filters[i], path_filters[i + 1]);
	if (!single) {
		api_list_page(ctx, res, key, fix, &rs);
		api_rspec_release(&rs);
		return;
	}

	struct db_query q = {
		.filters = rs.filters,
		.nfilters = rs.nfilters,
		.order = rs.order,
		.norder = rs.norder,
		.limit = api_page_limit(rs.limit),
		.offset = rs.offset,
	};
	static const char *const no_props[] = {"properties", NULL};
	bool skip_props = res == DB_BUILDS && fix == api_builds_fix && rs.nprops == 0;
	struct api_list_wait *w = api_list_wait_new(ctx, res, key, fix, skip_props, &rs);
	r = db_list_async(ctx->db, res, &q, skip_props ? no_props : NULL, false,
			  api_list_single_answered, w);
	if (r < 0) {
		api_list_refused(ctx, res, &w->rs, r);
		api_list_wait_free(w);
		return;
	}
	w->d = http_req_defer(ctx->req);
}

int api_fetch(struct api_ctx *ctx, enum db_resource res, const char *const *filters, json_t **ret)
{
	struct api_rspec rs = {.limit = -1};
	for (size_t i = 0; filters && filters[i]; i += 2)
		api_rspec_add_eq(&rs, filters[i], filters[i + 1]);
	struct db_query q = {.filters = rs.filters, .nfilters = rs.nfilters, .limit = -1};
	int r = db_list(ctx->db, res, &q, ret, NULL);
	api_rspec_release(&rs);
	return r;
}

json_t *api_this_master(struct api_ctx *ctx)
{
	struct master *m = ctx->m;
	if (db_is_postgresql(ctx->db))
		return json_pack("{s:I,s:s,s:b,s:I}", "masterid", (json_int_t)m->masterid, "name",
				 m->name, "active", true, "last_active", (json_int_t)clock_wall());
	json_t *masters = NULL;
	char mid[32];
	snprintf(mid, sizeof(mid), "%lld", (long long)m->masterid);
	const char *f[] = {"masterid", mid, NULL};
	if (api_fetch(ctx, DB_MASTERS, f, &masters) < 0)
		return NULL;
	json_t *row = json_incref(json_array_get(masters, 0));
	json_decref(masters);
	return row;
}

int api_lookup(struct api_ctx *ctx, enum db_resource res, const char *idfield,
	       const char *const *filters, int64_t *ret_id)
{
	json_t *items = NULL;
	int r = api_fetch(ctx, res, filters, &items);
	if (r == -EINVAL) {
		json_decref(items);
		return 0; /* e.g. a step "number" that is not a number: no such row */
	}
	if (r < 0) {
		api_reply_db_error(ctx, r);
		return r;
	}
	json_t *first = json_array_get(items, 0);
	int found = first != NULL;
	if (found)
		*ret_id = json_integer_value(json_object_get(first, idfield));
	json_decref(items);
	return found;
}

int api_builder_id(struct api_ctx *ctx, const char *idname, int64_t *ret_id)
{
	const char *f[] = {api_is_num(idname) ? "builderid" : "name", idname, NULL};
	return api_lookup(ctx, DB_BUILDERS, "builderid", f, ret_id);
}

/* ---- root ----------------------------------------------------------------------------- */

void api_root_get(struct api_ctx *ctx)
{
	static const char *const names[] = {
		"builders",  "builds",       "buildrequests", "workers",
		"logchunks", "buildsets",    "changes",       "changesources",
		"masters",   "sourcestamps", "schedulers",    "forceschedulers",
	};
	json_t *links = json_array();
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		json_array_append_new(links, json_pack("{s:s}", "name", names[i]));
	json_t *doc = json_pack("{s:o,s:{s:I}}", "rootlinks", links, "meta", "total",
				(json_int_t)ARRAY_SIZE(names));
	api_reply_json(ctx, 200, doc);
}

/* ---- entry point ---------------------------------------------------------------------- */

static void api_handle_post(struct api_ctx *ctx, const struct api_route *rt, bool path_ok)
{
	struct api_rpc rpc;
	json_t *reply = NULL;
	int status = api_rpc_parse(ctx->req->content_type, ctx->req->body, ctx->req->body_len, &rpc,
				   &reply);
	if (status) {
		char *s = json_dumps(reply, 0);
		json_decref(reply);
		http_reply_take(ctx->req, status, "application/json", s, strlen(s));
		return;
	}
	if (!path_ok) {
		char *msg = xasprintf("Invalid path: %s", ctx->rest);
		api_rpc_reply_error(ctx, 404, rpc.id, -32600, msg);
		free(msg);
	} else if (!rt->rpc) {
		char *msg = xasprintf("action: %s is not supported", rpc.method);
		api_rpc_reply_error(ctx, 501, rpc.id, -32601, msg);
		free(msg);
	} else if (auth_rpc_gate(ctx, &rpc, rt->pattern) == 0) { /* slice "weblogin": auth.h */
		if (!strcmp(rt->pattern, "users/*") && !strcmp(rpc.method, "roles"))
			auth_user_roles_rpc(ctx, &rpc);
		else
			rt->rpc(ctx, &rpc);
	}
	api_rpc_release(&rpc);
}

void api_handle(struct http_req *req)
{
	/* slice "operator": only its cleanup reads it (clang would call it unused) */
	__attribute__((cleanup(stats_api_request_done), unused)) uint64_t t0 = stats_now_ns();
	struct api_ctx ctx = {.req = req, .m = req->m, .db = req->m->db};
	const char *path = req->path + strlen("/api/v2");
	bool root = *path == '\0';

	ctx.rest = *path == '/' ? path + 1 : path;
	_cleanup_free_ char *segs = xstrdup(ctx.rest);
	const struct api_route *rt = root ? NULL : api_route_find(&ctx, segs);
	ctx.route = rt;

	if (req->method == HTTP_POST && push_api_post(&ctx)) /* slice "push": a raw JSON bag */
		return;
	if (req->method == HTTP_POST) {
		api_handle_post(&ctx, rt, rt != NULL);
		return;
	}
	char why[256]; /* slice "weblogin": auth.anonymous_read = false */
	int status = auth_read_check(req, why, sizeof(why));
	if (status) {
		api_reply_error(&ctx, status, why);
		return;
	}
	if (root)
		api_root_get(&ctx);
	else if (!rt)
		api_invalid_path(&ctx);
	else
		rt->get(&ctx);
}
