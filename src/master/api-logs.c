/*
 * /api/v2/logs/...: log metadata, line ranges as Buildbot "logchunks",
 * and the raw download, which is streamed page by page from the database
 * (db_log_read) so a 50 MB log never sits whole in the master's memory.
 */
#define LOG_SUBSYS "api"

#define KILN_BUF_LAX 1 /* issue 8: buf results not yet checked in this file */
#include "master/api-int.h"
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

/* Copies s to b replacing invalid UTF-8 with U+FFFD (JSON needs valid text;
 * build output is whatever the command printed). */
static void api_utf8_sanitize(struct buf *b, const unsigned char *s, size_t n)
{
	static const char repl[] = "\xef\xbf\xbd";
	size_t i = 0;
	while (i < n) {
		unsigned char c = s[i];
		size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
		bool ok = len > 0 && i + len <= n && c != 0;
		for (size_t k = 1; ok && k < len; k++)
			ok = (s[i + k] & 0xc0) == 0x80;
		if (ok && len == 2)
			ok = c >= 0xc2;
		if (ok && len == 3) {
			unsigned cp = (c & 0x0fu) << 12 | (s[i + 1] & 0x3fu) << 6 | (s[i + 2] & 0x3fu);
			ok = cp >= 0x800 && (cp < 0xd800 || cp > 0xdfff);
		}
		if (ok && len == 4) {
			unsigned cp = (c & 0x07u) << 18 | (s[i + 1] & 0x3fu) << 12 |
				      (s[i + 2] & 0x3fu) << 6 | (s[i + 3] & 0x3fu);
			ok = cp >= 0x10000 && cp <= 0x10ffff;
		}
		if (ok) {
			buf_add(b, s + i, len);
			i += len;
		} else {
			buf_add(b, repl, 3);
			i++;
		}
	}
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

	struct buf text, clean;
	int64_t count = 0;
	buf_init(&text, KILN_MAX_LOG_CONTENTS);
	int64_t want = limit >= 0 ? limit : info.num_lines > offset ? info.num_lines - offset : 0;
	int r = want ? db_log_read(ctx->db, logid, offset, want, &text, &count) : 0;
	if (r < 0 && r != -E2BIG) {
		buf_release(&text);
		api_reply_db_error(ctx, r);
		return;
	}
	if (r == -E2BIG)
		log_info("log %" PRId64 ": contents reply cut at %" PRId64 " lines (cap %u bytes)",
			 logid, count, KILN_MAX_LOG_CONTENTS);
	buf_init(&clean, KILN_MAX_LOG_CONTENTS * 3u);
	api_utf8_sanitize(&clean, (const unsigned char *)text.ptr, text.len);
	buf_release(&text);

	json_t *chunk = json_object();
	json_object_set_new(chunk, "content", json_stringn(clean.ptr, clean.len));
	json_object_set_new(chunk, "firstline", json_integer(offset));
	json_object_set_new(chunk, "logid", json_integer(logid));
	buf_release(&clean);
	json_t *list = json_array();
	json_array_append_new(list, chunk);
	api_reply_json(ctx, 200, json_pack("{s:o,s:{}}", "logchunks", list, "meta"));
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
	bool strip;    /* 's' logs: drop each line's stream character */
	bool started;  /* a line was written: the next one needs a '\n' first */
	struct buf page;
};

static int api_raw_produce(void *ud, struct buf *out)
{
	struct api_raw *st = ud;
	int64_t count = 0;

	buf_reset(&st->page);
	int r = db_log_read(st->db, st->logid, st->next_line, API_RAW_PAGE_LINES, &st->page, &count);
	if (r == -E2BIG && count == 0) {
		log_warn("log %" PRId64 ": line %" PRId64 " longer than %zu bytes, raw download cut",
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
		if (st->started)
			buf_addch(out, '\n');
		buf_add(out, start, (size_t)(eol - start));
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

void api_log_raw_reply(struct api_ctx *ctx, int64_t logid)
{
	char id[32];
	snprintf(id, sizeof(id), "%" PRId64, logid);
	const char *f[] = {"logid", id, NULL};
	json_t *items = NULL;
	int r = api_fetch(ctx, DB_LOGS, f, &items);
	if (r < 0) {
		json_decref(items);
		api_reply_db_error(ctx, r);
		return;
	}
	json_t *log = json_array_get(items, 0);
	if (!log) {
		json_decref(items);
		api_not_found(ctx);
		return;
	}
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
	json_decref(items);
	http_reply_stream(ctx->req, 200,
			  html ? "text/html; charset=utf-8" : "text/plain; charset=utf-8", disp,
			  api_raw_produce, api_raw_free, st);
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
