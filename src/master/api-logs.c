/*
 * /api/v2/logs/...: log metadata, line ranges as Buildbot "logchunks",
 * the raw download, and a search (a Kiln extension for the log viewer).  Both bodies are streamed
 * page by page from the database (db_log_read), so a 50 MB log never sits whole in the master's
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

static int api_log_info(struct api_ctx *ctx, int64_t logid, struct db_log_info *info)
{
	int r = db_log_get(ctx->db, logid, info);
	if (r == KILN_ENOTFOUND)
		api_not_found(ctx);
	else if (r < 0)
		api_reply_db_error(ctx, r);
	return r;
}

/* ---- /contents: logchunks, streamed -------------------------------------------------- */

enum api_contents_state {
	API_CONTENTS_HEAD,
	API_CONTENTS_LINES,
	API_CONTENTS_TAIL,
	API_CONTENTS_DONE
};

struct api_contents {
	struct db *db; /* borrowed: the master's; streams stop before it closes */
	int64_t logid;
	int64_t next_line;
	int64_t lines_left; /* lines still asked for */
	size_t text_left;   /* raw bytes still allowed (KILN_MAX_LOG_CONTENTS) */
	enum api_contents_state state;
	char *head, *tail; /* owned: the JSON before and after the content string */
	char *pend;        /* owned: text produced but not yet handed out */
	size_t pend_len, pend_off;
	struct buf page;
};

static void api_contents_free(void *ud)
{
	struct api_contents *st = ud;
	free(st->head);
	free(st->tail);
	free(st->pend);
	buf_release(&st->page);
	free(st);
}

/* Reads the next page of whole lines into st->page (none at the end), cut to
 * what st->text_left still allows.  0 or a negative error. */
static int api_contents_read(struct api_contents *st)
{
	int64_t count = 0;
	int64_t want = st->lines_left < API_RAW_PAGE_LINES ? st->lines_left : API_RAW_PAGE_LINES;

	if (st->page.max != API_CONTENTS_PAGE) { /* it held one long line */
		buf_release(&st->page);
		buf_init(&st->page, API_CONTENTS_PAGE);
	}
	buf_reset(&st->page);
	int r = db_log_read(st->db, st->logid, st->next_line, want, &st->page, &count);
	if (r == -E2BIG && count == 0) {
		/* one line longer than a page: read it alone, within the text cap */
		struct buf one;
		buf_init(&one, st->text_left);
		r = db_log_read(st->db, st->logid, st->next_line, 1, &one, &count);
		if (r == 0 && count == 1) {
			buf_release(&st->page);
			st->page = one;
		} else {
			buf_release(&one);
		}
		if (r == -E2BIG)
			count = 0; /* does not fit in what is left: the reply stops here */
		else if (r < 0)
			return r;
	} else if (r < 0 && r != -E2BIG) {
		return r;
	}
	if (count == 0) {
		buf_reset(&st->page);
		if (st->lines_left > 0 && r == -E2BIG)
			log_info("log %" PRId64 ": contents reply cut at line %" PRId64
				 " (cap %u bytes)",
				 st->logid, st->next_line, KILN_MAX_LOG_CONTENTS);
		st->lines_left = 0;
		return 0;
	}
	if (st->page.len > st->text_left) {
		/* keep the whole lines that fit */
		size_t keep = 0;
		int64_t kept = 0;
		for (size_t i = 0; i < st->text_left; i++)
			if (st->page.ptr[i] == '\n') {
				keep = i + 1;
				kept++;
			}
		log_info("log %" PRId64 ": contents reply cut at line %" PRId64 " (cap %u bytes)",
			 st->logid, st->next_line + kept, KILN_MAX_LOG_CONTENTS);
		buf_setlen(&st->page, keep);
		count = kept;
		st->lines_left = count; /* this page is the last */
	}
	st->text_left -= st->page.len;
	st->next_line += count;
	st->lines_left -= count;
	return 0;
}

/* Makes the next pending text: the head, an escaped page, or the tail.
 * 1 when there is some, 0 at the end, or a negative error. */
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
			if (r < 0)
				return r;
			if (st->page.len == 0)
				continue;
			/* the sanitised copy lives only until it is escaped */
			struct buf clean;
			buf_init(&clean, st->page.len * 3u);
			r = str_utf8_sanitize(&clean, st->page.ptr, st->page.len);
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

void api_log_contents_reply(struct api_ctx *ctx, int64_t logid)
{
	struct db_log_info info;
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
	if (api_log_info(ctx, logid, &info) < 0)
		return;

	struct api_contents *st = xcalloc(1, sizeof(*st));
	const char *ctype = NULL;
	st->db = ctx->db;
	st->logid = logid;
	st->next_line = offset;
	st->lines_left = limit >= 0 ? limit : info.num_lines > offset ? info.num_lines - offset : 0;
	st->text_left = KILN_MAX_LOG_CONTENTS;
	buf_init(&st->page, API_CONTENTS_PAGE);
	if (api_contents_envelope(ctx, logid, offset, st, &ctype) < 0) {
		api_contents_free(st);
		api_reply_error(ctx, 500, "cannot encode JSON");
		return;
	}
	http_reply_stream_held(ctx->req, 200, ctype, NULL, api_contents_produce, api_contents_free,
			       st, API_CONTENTS_HELD);
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
	struct db *db; /* borrowed: the master's; streams stop before it closes */
	int64_t logid;
	int64_t next_line;
	bool strip;   /* 's' logs: drop each line's stream character */
	bool started; /* a line was written: the next one needs a '\n' first */
	struct buf page;
};

static int api_raw_produce(void *ud, struct buf *out)
{
	struct api_raw *st = ud;
	int64_t count = 0;

	buf_reset(&st->page);
	int r = db_log_read(st->db, st->logid, st->next_line, API_RAW_PAGE_LINES, &st->page,
			    &count);
	if (r == -E2BIG && count == 0) {
		log_warn("log %" PRId64 ": line %" PRId64
			 " longer than %zu bytes, raw download cut",
			 st->logid, st->next_line, st->page.max);
		return -EIO;
	}
	if (r < 0 && r != -E2BIG) {
		log_warn("log %" PRId64 ": raw download failed: %s", st->logid, err_str(r));
		return r;
	}
	if (count == 0)
		return 0;
	st->next_line += count;

	/* lines joined by '\n' with no trailing newline, as Buildbot sends them */
	const char *p = st->page.ptr, *end = p + st->page.len;
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
	buf_release(&st->page);
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
	st->db = ctx->db;
	st->logid = logid;
	st->strip = type && !strcmp(type, "s");
	/* the output piece must hold a transformed page: it is never longer */
	buf_init(&st->page, KILN_MAX_HTTP_RESPONSE_CHUNK);
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
	struct db_log_info info;
	if (api_log_info(ctx, logid, &info) < 0)
		return;

	int64_t line = -1, next = -1, from = a.from;
	if (a.backward && (from < 0 || from >= info.num_lines))
		from = info.num_lines - 1;
	if (from < 0)
		from = 0;
	bool empty = a.backward ? info.num_lines == 0 : from >= info.num_lines;
	if (!empty) {
		unsigned flags = (a.icase ? DB_LOG_SEARCH_ICASE : 0) |
				 (a.backward ? DB_LOG_SEARCH_BACKWARD : 0);
		int r = db_log_search(ctx->db, logid, a.q, a.qlen, flags, from,
				      KILN_LOG_SEARCH_SCAN_BYTES, &line, &next);
		if (r < 0) {
			api_reply_db_error(ctx, r);
			return;
		}
	}
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

void api_log_search_get(struct api_ctx *ctx)
{
	long long id;
	if (str_to_i64(ctx->cap[0], &id) < 0) {
		api_invalid_path(ctx);
		return;
	}
	api_log_search_reply(ctx, id);
}
