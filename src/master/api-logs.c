/*
 * /api/v2/logs/...: log metadata, line ranges as Buildbot "logchunks",
 * the raw download, and a search (a Kiln extension for the log viewer).  Both bodies are streamed
 * page by page from the database (db_log_read_async: each page is read on a later loop turn
 * on either backend, issue 14), so a 50 MB log never sits whole in the master's
 * memory: the logchunks JSON is written as its envelope around the escaped
 * content, one page of lines at a time.
 */
#define LOG_SUBSYS "api"

#include "master/api-int.h"
#include "master/api-logs.h"
#include "master/master.h"

#include "common/buf.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/str.h"
#include "common/xalloc.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* Lines asked of the database per streamed piece; the piece also stops at
 * KILN_MAX_HTTP_RESPONSE_CHUNK bytes. */
#define API_RAW_PAGE_LINES 2048
/* Raw text read per page of a /contents stream.  Sanitised (invalid UTF-8
 * becomes a 3-byte U+FFFD) and JSON-escaped (a control byte becomes
 * \u00XX) a page takes at most 6 times this, held twice (jansson's string
 * and the pending text), so API_CONTENTS_HELD bounds the stream's own
 * memory (a single longer line is read whole, within KILN_MAX_LOG_CONTENTS). */
#define API_CONTENTS_PAGE (16u << 10)
#define API_CONTENTS_HELD (API_CONTENTS_PAGE * 16u)
/* Stands for the content when the envelope is dumped (no log text is
 * dumped this way: it is an invalid control sequence in a string). */
#define API_CONTENTS_MARK "\x01kiln-content\x01"
#define API_CONTENTS_MARK_JSON "\"\\u0001kiln-content\\u0001\""

void api_log_reply(struct api_ctx *ctx, int64_t logid)
{
	char id[32];
	snprintf(id, sizeof(id), "%" PRId64, logid);
	const char *f[] = {"logid", id, NULL};
	api_list(ctx, DB_LOGS, "logs", true, NULL, f);
}

void api_log_get(struct api_ctx *ctx)
{
	const char *f[] = {"logid", ctx->cap[0], NULL};
	api_list(ctx, DB_LOGS, "logs", true, NULL, f);
}

/* ---- a page of lines, read asynchronously (issue 14) -------------------------------------- */

/* The stream that asked: orphaned (pg NULL) if the stream goes first. */
struct api_log_fetch {
	struct api_log_page *pg;
};

struct api_log_page {
	struct db *db;        /* borrowed: the master's; streams stop before it closes */
	struct http_req *req; /* the stream's, resumed when the answer is in */
	int64_t logid;
	struct api_log_fetch *fetch; /* in flight, or NULL */
	bool have;                   /* an answer is in: r, count, page */
	int r;
	int64_t count;
	struct buf page;
};

static void api_log_page_on_lines(void *arg, int r, const char *text, size_t len, int64_t count,
				  const char *err)
{
	struct api_log_fetch *f = arg;
	struct api_log_page *pg = f->pg;
	free(f);
	if (!pg)
		return;
	pg->fetch = NULL;
	pg->have = true;
	pg->r = r;
	pg->count = count;
	size_t max = pg->page.max;
	buf_release(&pg->page);
	buf_init(&pg->page, max);
	if (text && len && buf_add(&pg->page, text, len) < 0) {
		pg->r = -EIO;
		pg->count = 0;
	}
	if (r < 0 && r != -E2BIG)
		log_warn("log %" PRId64 ": read failed: %s (%s)", pg->logid, err_str(r),
			 err ? err : "");
	http_stream_resume(pg->req);
}

/* Asks for lines [first, first + max_lines) within max_bytes: the answer
 * comes to pg (have) and resumes the stream.  0 or an error at once. */
static int api_log_page_ask(struct api_log_page *pg, int64_t first, int64_t max_lines,
			    size_t max_bytes)
{
	struct api_log_fetch *f = xmalloc(sizeof(*f));
	f->pg = pg;
	pg->have = false;
	pg->page.max = max_bytes;
	int r = db_log_read_async(pg->db, pg->logid, first, max_lines, max_bytes,
				  api_log_page_on_lines, f);
	if (r < 0) {
		free(f);
		return r;
	}
	pg->fetch = f;
	return 0;
}

static void api_log_page_init(struct api_log_page *pg, struct api_ctx *ctx, int64_t logid,
			      size_t max)
{
	*pg = (struct api_log_page){.db = ctx->db, .req = ctx->req, .logid = logid};
	buf_init(&pg->page, max);
}

static void api_log_page_release(struct api_log_page *pg)
{
	if (pg->fetch)
		pg->fetch->pg = NULL;
	buf_release(&pg->page);
}

/* The log's metadata, then cont(ctx, info, arg) on a later turn; or
 * answered (404, 500).  ctx's path segments are not kept. */
typedef void (*api_log_info_cont)(struct api_ctx *ctx, const struct db_log_info *info, void *arg);
struct api_log_info_wait {
	struct http_deferred *d;
	struct api_ctx ctx; /* the handler's, its path segments copied into cap */
	char *cap[API_MAX_SEGS];
	api_log_info_cont cont;
	void *arg;
	void (*drop)(void *arg);
};

static void api_log_info_answered(void *arg, int r, const struct db_log_info *info, const char *err)
{
	struct api_log_info_wait *w = arg;
	struct api_ctx *ctx = api_deferred_ctx(w->d, &w->ctx, r == KILN_ENOTFOUND ? 0 : r, err);
	if (ctx && r != KILN_ENOTFOUND)
		w->cont(ctx, info, w->arg);
	else
		w->drop(w->arg); /* not found, the client went, or answered 500 */
	if (ctx && r == KILN_ENOTFOUND)
		api_not_found(ctx);
	http_deferred_end(w->d);
	api_ctx_unhold(&w->ctx, w->cap);
	free(w);
}

/* cont owns arg; drop(arg) when cont is not called. */
static void api_log_info_then(struct api_ctx *ctx, int64_t logid, api_log_info_cont cont, void *arg,
			      void (*drop)(void *arg))
{
	struct api_log_info_wait *w = xcalloc(1, sizeof(*w));
	api_ctx_hold(&w->ctx, w->cap, ctx);
	w->cont = cont;
	w->arg = arg;
	w->drop = drop;
	int r = db_log_get_async(ctx->db, logid, api_log_info_answered, w);
	if (r < 0) {
		api_reply_db_error(ctx, r);
		drop(arg);
		api_ctx_unhold(&w->ctx, w->cap);
		free(w);
		return;
	}
	w->d = http_req_defer(ctx->req);
}

/* ---- /contents: logchunks, streamed -------------------------------------------------- */

enum api_contents_state {
	API_CONTENTS_HEAD,
	API_CONTENTS_LINES,
	API_CONTENTS_TAIL,
	API_CONTENTS_DONE
};

struct api_contents {
	int64_t logid;
	int64_t next_line;
	int64_t lines_left; /* lines still asked for */
	size_t text_left;   /* raw bytes still allowed (KILN_MAX_LOG_CONTENTS) */
	enum api_contents_state state;
	char *head, *tail; /* owned: the JSON before and after the content string */
	char *pend;        /* owned: text produced but not yet handed out */
	size_t pend_len, pend_off;
	bool one_line; /* the read in flight is one line longer than a page */
	struct api_log_page lp;
};

static void api_contents_free(void *ud)
{
	struct api_contents *st = ud;
	free(st->head);
	free(st->tail);
	free(st->pend);
	api_log_page_release(&st->lp);
	free(st);
}

/* The next page of whole lines in st->lp.page (none at the end), cut to
 * what st->text_left still allows: 0; HTTP_PRODUCE_LATER while it is read
 * (the stream is resumed when it is in); or a negative error. */
static int api_contents_read(struct api_contents *st)
{
	struct api_log_page *lp = &st->lp;
	int r;
	if (!lp->have) {
		if (lp->fetch)
			return HTTP_PRODUCE_LATER;
		int64_t want =
			st->lines_left < API_RAW_PAGE_LINES ? st->lines_left : API_RAW_PAGE_LINES;
		st->one_line = false;
		r = api_log_page_ask(lp, st->next_line, want, API_CONTENTS_PAGE);
		return r < 0 ? r : HTTP_PRODUCE_LATER;
	}
	lp->have = false;
	r = lp->r;
	int64_t count = lp->count;
	if (st->one_line) {
		if (r == -E2BIG)
			count = 0; /* does not fit in what is left: the reply stops here */
		else if (r < 0)
			return r;
	} else if (r == -E2BIG && count == 0) {
		/* one line longer than a page: read it alone, within the text cap */
		st->one_line = true;
		r = api_log_page_ask(lp, st->next_line, 1, st->text_left);
		return r < 0 ? r : HTTP_PRODUCE_LATER;
	} else if (r < 0 && r != -E2BIG) {
		return r;
	}
	struct buf *page = &lp->page;
	if (count == 0) {
		buf_reset(page);
		if (st->lines_left > 0 && r == -E2BIG)
			log_info("log %" PRId64 ": contents reply cut at line %" PRId64
				 " (cap %u bytes)",
				 st->logid, st->next_line, KILN_MAX_LOG_CONTENTS);
		st->lines_left = 0;
		return 0;
	}
	if (page->len > st->text_left) {
		/* keep the whole lines that fit */
		size_t keep = 0;
		int64_t kept = 0;
		for (size_t i = 0; i < st->text_left; i++)
			if (page->ptr[i] == '\n') {
				keep = i + 1;
				kept++;
			}
		log_info("log %" PRId64 ": contents reply cut at line %" PRId64 " (cap %u bytes)",
			 st->logid, st->next_line + kept, KILN_MAX_LOG_CONTENTS);
		buf_setlen(page, keep);
		count = kept;
		st->lines_left = count; /* this page is the last */
	}
	st->text_left -= page->len;
	st->next_line += count;
	st->lines_left -= count;
	return 0;
}

/* Makes the next pending text: the head, an escaped page, or the tail.
 * 1 when there is some, 0 at the end, HTTP_PRODUCE_LATER while a page is
 * read, or a negative error. */
static int api_contents_next(struct api_contents *st)
{
	free(st->pend);
	st->pend = NULL;
	st->pend_len = st->pend_off = 0;

	switch (st->state) {
	case API_CONTENTS_HEAD:
		st->pend = TAKE_PTR(st->head);
		st->pend_len = strlen(st->pend);
		st->state = API_CONTENTS_LINES;
		return 1;
	case API_CONTENTS_LINES:
		while (st->lines_left > 0 && st->text_left > 0) {
			int r = api_contents_read(st);
			if (r < 0 || r == HTTP_PRODUCE_LATER)
				return r;
			struct buf *page = &st->lp.page;
			if (page->len == 0)
				continue;
			/* the sanitised copy lives only until it is escaped */
			struct buf clean;
			buf_init(&clean, page->len * 3u);
			r = str_utf8_sanitize(&clean, page->ptr, page->len);
			json_t *js = r < 0 ? NULL : json_stringn(clean.ptr, clean.len);
			buf_release(&clean);
			if (r < 0)
				return r;
			char *esc = js ? json_dumps(js, JSON_ENCODE_ANY) : NULL;
			json_decref(js);
			size_t n = esc ? strlen(esc) : 0;
			if (n < 2) {
				free(esc);
				return -EIO;
			}
			/* the escaped text without its quotes */
			memmove(esc, esc + 1, n - 2);
			st->pend = esc;
			st->pend_len = n - 2;
			return 1;
		}
		st->state = API_CONTENTS_TAIL;
		/* fall through */
	case API_CONTENTS_TAIL:
		st->pend = TAKE_PTR(st->tail);
		st->pend_len = strlen(st->pend);
		st->state = API_CONTENTS_DONE;
		return 1;
	case API_CONTENTS_DONE:
		break;
	}
	return 0;
}

static int api_contents_produce(void *ud, struct buf *out)
{
	struct api_contents *st = ud;

	/* fill the chunk from as many pending pieces as fit (head, pages, tail) */
	while (buf_room(out) > 0) {
		if (st->pend_off == st->pend_len) {
			int r = api_contents_next(st);
			if (r < 0) {
				log_warn("log %" PRId64 ": contents reply failed: %s", st->logid,
					 err_str(r));
				return r;
			}
			if (r == HTTP_PRODUCE_LATER)
				return r;
			if (r == 0)
				break;
			continue;
		}
		size_t n = st->pend_len - st->pend_off;
		if (n > buf_room(out))
			n = buf_room(out);
		if (buf_add(out, st->pend + st->pend_off, n) < 0)
			return -EIO;
		st->pend_off += n;
	}
	return st->pend_off < st->pend_len || st->state != API_CONTENTS_DONE ? 1 : 0;
}

/* Splits the reply document, dumped with API_CONTENTS_MARK as the content,
 * into the text before and after the content string's characters. */
static int api_contents_envelope(struct api_ctx *ctx, int64_t logid, int64_t firstline,
				 struct api_contents *st, const char **ret_ctype)
{
	json_t *chunk = json_object();
	json_object_set_new(chunk, "content", json_string(API_CONTENTS_MARK));
	json_object_set_new(chunk, "firstline", json_integer(firstline));
	json_object_set_new(chunk, "logid", json_integer(logid));
	json_t *list = json_array();
	json_array_append_new(list, chunk);
	json_t *doc = json_pack("{s:o,s:{}}", "logchunks", list, "meta");
	size_t len = 0;
	char *text = doc ? api_json_text(ctx, doc, &len, ret_ctype) : NULL;
	json_decref(doc);
	char *mark = text ? strstr(text, API_CONTENTS_MARK_JSON) : NULL;
	if (!mark) {
		free(text);
		return -EIO;
	}
	size_t before = (size_t)(mark - text) + 1; /* through the opening quote */
	st->head = xstrndup(text, before);
	st->tail = xstrdup(mark + strlen(API_CONTENTS_MARK_JSON) - 1); /* from the closing one */
	free(text);
	return 0;
}

struct api_contents_args {
	long long offset, limit;
};

static void api_log_contents_start(struct api_ctx *ctx, const struct db_log_info *info, void *arg)
{
	struct api_contents_args *a = arg;
	long long offset = a->offset, limit = a->limit;
	free(a);
	struct api_contents *st = xcalloc(1, sizeof(*st));
	const char *ctype = NULL;
	st->logid = info->logid;
	st->next_line = offset;
	st->lines_left = limit >= 0                 ? limit
			 : info->num_lines > offset ? info->num_lines - offset
						    : 0;
	st->text_left = KILN_MAX_LOG_CONTENTS;
	api_log_page_init(&st->lp, ctx, info->logid, API_CONTENTS_PAGE);
	if (api_contents_envelope(ctx, info->logid, offset, st, &ctype) < 0) {
		api_contents_free(st);
		api_reply_error(ctx, 500, "cannot encode JSON");
		return;
	}
	http_reply_stream_held(ctx->req, 200, ctype, NULL, api_contents_produce, api_contents_free,
			       st, API_CONTENTS_HELD);
}

void api_log_contents_reply(struct api_ctx *ctx, int64_t logid)
{
	long long offset = 0, limit = -1;
	const char *v;

	if ((v = http_req_arg(ctx->req, "offset")) && (str_to_i64(v, &offset) < 0 || offset < 0)) {
		api_reply_error(ctx, 400, "invalid offset");
		return;
	}
	if ((v = http_req_arg(ctx->req, "limit")) && (str_to_i64(v, &limit) < 0 || limit < 0)) {
		api_reply_error(ctx, 400, "invalid limit");
		return;
	}
	struct api_contents_args *a = xmalloc(sizeof(*a));
	*a = (struct api_contents_args){.offset = offset, .limit = limit};
	api_log_info_then(ctx, logid, api_log_contents_start, a, free);
}

void api_log_contents_get(struct api_ctx *ctx)
{
	long long id;
	if (str_to_i64(ctx->cap[0], &id) < 0) {
		api_invalid_path(ctx);
		return;
	}
	api_log_contents_reply(ctx, id);
}

/* ---- raw download ----------------------------------------------------------------------- */

struct api_raw {
	int64_t logid;
	int64_t next_line;
	bool strip;   /* 's' logs: drop each line's stream character */
	bool started; /* a line was written: the next one needs a '\n' first */
	struct api_log_page lp;
};

static int api_raw_produce(void *ud, struct buf *out)
{
	struct api_raw *st = ud;
	struct api_log_page *lp = &st->lp;

	if (!lp->have) {
		if (lp->fetch)
			return HTTP_PRODUCE_LATER;
		/* the output piece must hold a transformed page: it is never longer */
		int r = api_log_page_ask(lp, st->next_line, API_RAW_PAGE_LINES,
					 KILN_MAX_HTTP_RESPONSE_CHUNK);
		if (r < 0) {
			log_warn("log %" PRId64 ": raw download failed: %s", st->logid, err_str(r));
			return r;
		}
		return HTTP_PRODUCE_LATER;
	}
	lp->have = false;
	int r = lp->r;
	int64_t count = lp->count;
	if (r == -E2BIG && count == 0) {
		log_warn("log %" PRId64 ": line %" PRId64 " longer than %u bytes, raw download cut",
			 st->logid, st->next_line, KILN_MAX_HTTP_RESPONSE_CHUNK);
		return -EIO;
	}
	if (r < 0 && r != -E2BIG)
		return r; /* logged by api_log_page_on_lines */
	if (count == 0)
		return 0;
	st->next_line += count;

	/* lines joined by '\n' with no trailing newline, as Buildbot sends them */
	const char *p = lp->page.ptr, *end = p + lp->page.len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end;
		const char *start = p;
		if (st->strip && start < eol)
			start++;
		/* a page never grows here, so out (a chunk) always has room */
		if ((st->started && buf_addch(out, '\n') < 0) ||
		    buf_add(out, start, (size_t)(eol - start)) < 0) {
			log_warn("log %" PRId64 ": raw download page does not fit a piece",
				 st->logid);
			return -EIO;
		}
		st->started = true;
		p = nl ? nl + 1 : end;
	}
	return 1;
}

static void api_raw_free(void *ud)
{
	struct api_raw *st = ud;
	api_log_page_release(&st->lp);
	free(st);
}

static void api_log_raw_then(struct api_ctx *ctx, json_t *items, void *arg)
{
	json_t *log = json_array_get(items, 0);
	if (!log) {
		api_not_found(ctx);
		return;
	}
	int64_t logid = json_integer_value(json_object_get(log, "logid"));
	const char *type = json_string_value(json_object_get(log, "type"));
	const char *slug = json_string_value(json_object_get(log, "slug"));
	_cleanup_free_ char *disp = xasprintf("attachment; filename=%s", slug ? slug : "log");
	bool html = type && !strcmp(type, "h");

	struct api_raw *st = xcalloc(1, sizeof(*st));
	st->logid = logid;
	st->strip = type && !strcmp(type, "s");
	api_log_page_init(&st->lp, ctx, logid, KILN_MAX_HTTP_RESPONSE_CHUNK);
	http_reply_stream(ctx->req, 200,
			  html ? "text/html; charset=utf-8" : "text/plain; charset=utf-8", disp,
			  api_raw_produce, api_raw_free, st);
}

void api_log_raw_reply(struct api_ctx *ctx, int64_t logid)
{
	char id[32];
	snprintf(id, sizeof(id), "%" PRId64, logid);
	const char *f[] = {"logid", id, NULL};
	api_fetch_then(ctx, DB_LOGS, f, api_log_raw_then, NULL);
}

void api_log_raw_get(struct api_ctx *ctx)
{
	long long id;
	if (str_to_i64(ctx->cap[0], &id) < 0) {
		api_invalid_path(ctx);
		return;
	}
	api_log_raw_reply(ctx, id);
}

/* ---- search (slice "uilog") -------------------------------------------------------------- */

int api_log_search_parse(const char *q, const char *from, const char *dir, const char *icase,
			 struct api_log_search_args *ret, const char **ret_err)
{
	struct api_log_search_args a = {.from = -1};
	long long v;

	if (!q || !*q) {
		*ret_err = "missing search text 'q'";
		return -EINVAL;
	}
	a.q = q;
	a.qlen = strlen(q);
	if (a.qlen > KILN_LOG_SEARCH_MAX_QUERY) {
		*ret_err = "search text 'q' is too long";
		return -EINVAL;
	}
	if (strchr(q, '\n')) {
		*ret_err = "search text 'q' has a newline";
		return -EINVAL;
	}
	if (from) {
		if (str_to_i64(from, &v) < 0 || v < 0) {
			*ret_err = "invalid 'from'";
			return -EINVAL;
		}
		a.from = v;
	}
	if (dir && strcmp(dir, "next")) {
		if (strcmp(dir, "prev")) {
			*ret_err = "'dir' is not next or prev";
			return -EINVAL;
		}
		a.backward = true;
	}
	if (icase) {
		if (!strcmp(icase, "1") || !strcmp(icase, "true")) {
			a.icase = true;
		} else if (strcmp(icase, "0") && strcmp(icase, "false")) {
			*ret_err = "'icase' is not 1, true, 0 or false";
			return -EINVAL;
		}
	}
	*ret = a;
	return 0;
}

/* A search's arguments, kept across its reads (q copied). */
struct api_log_search_wait {
	struct http_deferred *d;
	struct api_ctx ctx; /* its path segments copied into cap */
	char *cap[API_MAX_SEGS];
	struct api_log_search_args a;
	char *q; /* owned: a.q's text */
};

static void api_log_search_wait_free(struct api_log_search_wait *w)
{
	api_ctx_unhold(&w->ctx, w->cap);
	free(w->q);
	free(w);
}

static void api_log_search_drop(void *arg)
{
	api_log_search_wait_free(arg);
}

static void api_log_search_answer(struct api_ctx *ctx, int64_t line, int64_t next)
{
	json_t *matches = json_array();
	if (line >= 0)
		json_array_append_new(matches, json_pack("{s:I}", "line", (json_int_t)line));
	json_t *doc = json_pack("{s:o,s:{s:o}}", "matches", matches, "meta", "continue_from",
				next >= 0 ? json_integer(next) : json_null());
	if (!doc) {
		api_reply_error(ctx, 500, "cannot encode JSON");
		return;
	}
	api_reply_json(ctx, 200, doc);
}

static void api_log_search_found(void *arg, int r, int64_t line, int64_t next, const char *err)
{
	struct api_log_search_wait *w = arg;
	struct api_ctx *ctx = api_deferred_ctx(w->d, &w->ctx, r == KILN_ENOTFOUND ? 0 : r, err);
	if (ctx && r == KILN_ENOTFOUND)
		api_not_found(ctx);
	else if (ctx)
		api_log_search_answer(ctx, line, next);
	http_deferred_end(w->d);
	api_log_search_wait_free(w);
}

static void api_log_search_start(struct api_ctx *ctx, const struct db_log_info *info, void *arg)
{
	struct api_log_search_wait *w = arg;
	struct api_log_search_args *a = &w->a;
	int64_t from = a->from;
	if (a->backward && (from < 0 || from >= info->num_lines))
		from = info->num_lines - 1;
	if (from < 0)
		from = 0;
	bool empty = a->backward ? info->num_lines == 0 : from >= info->num_lines;
	if (empty) {
		api_log_search_answer(ctx, -1, -1);
		api_log_search_wait_free(w);
		return;
	}
	unsigned flags =
		(a->icase ? DB_LOG_SEARCH_ICASE : 0) | (a->backward ? DB_LOG_SEARCH_BACKWARD : 0);
	api_ctx_hold(&w->ctx, w->cap, ctx);
	int r = db_log_search_async(ctx->db, info->logid, a->q, a->qlen, flags, from,
				    KILN_LOG_SEARCH_SCAN_BYTES, api_log_search_found, w);
	if (r < 0) {
		api_reply_db_error(ctx, r);
		api_log_search_wait_free(w);
		return;
	}
	w->d = http_req_defer(ctx->req);
}

/* {"matches": [{"line": N}] or [], "meta": {"continue_from": LINE or null}}:
 * one search step, bounded by KILN_LOG_SEARCH_SCAN_BYTES of log text, so a
 * request never holds the loop for long; the viewer asks again from
 * continue_from until it gets a match or null. */
static void api_log_search_reply(struct api_ctx *ctx, int64_t logid)
{
	struct api_log_search_args a;
	const char *err = NULL;
	if (api_log_search_parse(http_req_arg(ctx->req, "q"), http_req_arg(ctx->req, "from"),
				 http_req_arg(ctx->req, "dir"), http_req_arg(ctx->req, "icase"), &a,
				 &err) < 0) {
		api_reply_error(ctx, 400, err);
		return;
	}
	struct api_log_search_wait *w = xcalloc(1, sizeof(*w));
	w->q = xmemdup(a.q, a.qlen + 1);
	w->a = a;
	w->a.q = w->q;
	api_log_info_then(ctx, logid, api_log_search_start, w, api_log_search_drop);
}

void api_log_search_get(struct api_ctx *ctx)
{
	long long id;
	if (str_to_i64(ctx->cap[0], &id) < 0) {
		api_invalid_path(ctx);
		return;
	}
	api_log_search_reply(ctx, id);
}
