/*
 * The page served at "/": a placeholder for the web UI (which will be
 * embedded from www/ later) that names the master and links into the
 * REST API, so a browser pointed at the master finds its way around.
 */
#include "master/http.h"
#include "master/master.h"

#include "common/buf.h"
#include "common/xalloc.h"
#include "config/config.h"

#include <string.h>

static int www_add_escaped(struct buf *b, const char *s)
{
	for (; *s; s++) {
		int r;
		switch (*s) {
		case '<':
			r = buf_adds(b, "&lt;");
			break;
		case '>':
			r = buf_adds(b, "&gt;");
			break;
		case '&':
			r = buf_adds(b, "&amp;");
			break;
		case '"':
			r = buf_adds(b, "&quot;");
			break;
		case '\'':
			r = buf_adds(b, "&#39;");
			break;
		default:
			r = buf_addch(b, *s);
			break;
		}
		if (r < 0)
			return r;
	}
	return 0;
}

void www_handle(struct http_req *req)
{
	static const char *const links[] = {"builders", "builds",  "buildrequests",  "buildsets",
					    "workers",  "masters", "forceschedulers"};
	const struct config *cfg = req->m->cfg;
	const char *title = cfg && cfg->title ? cfg->title : "Kiln";
	struct buf b;

	if (req->method != HTTP_GET) {
		static const char msg[] = "{\"error\": \"method not allowed\"}";
		http_reply(req, 405, "text/plain; charset=utf-8", msg, sizeof(msg) - 1);
		return;
	}
	/* A failed append leaves the buffer failed and every later one fails too
	 * (buf.h), so one test after the run tells whether the page is whole. */
	int r;
	buf_init(&b, 1u << 20);
	r = buf_adds(&b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>");
	r = r < 0 ? r : www_add_escaped(&b, title);
	r = r < 0 ? r : buf_adds(&b, "</title></head>\n<body>\n<h1>");
	r = r < 0 ? r : www_add_escaped(&b, title);
	r = r < 0 ? r
		  : buf_adds(&b, "</h1>\n<p>Kiln " KILN_VERSION " master. The web UI is not built "
				 "in yet; the REST API is:</p>\n<ul>\n");
	for (size_t i = 0; r >= 0 && i < ARRAY_SIZE(links); i++)
		r = buf_addf(&b, "<li><a href=\"/api/v2/%s\">/api/v2/%s</a></li>\n", links[i],
			     links[i]);
	r = r < 0 ? r : buf_adds(&b, "</ul>\n</body></html>\n");
	if (r < 0) {
		/* only a title of hundreds of KiB gets here: say so rather than cut the page */
		static const char msg[] = "{\"error\": \"page too large (the configured title)\"}";
		buf_release(&b);
		http_reply(req, 500, "text/plain; charset=utf-8", msg, sizeof(msg) - 1);
		return;
	}
	size_t len;
	char *p = buf_detach(&b, &len);
	http_reply_take(req, 200, "text/html; charset=utf-8", p, len);
}
