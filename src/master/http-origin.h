/*
 * Which Host and Origin headers the master's HTTP listener answers: the
 * defence against DNS rebinding (a name an attacker controls pointed at
 * 127.0.0.1) and against cross-site requests from a page a developer has
 * open (reading /ws, posting a form to the JSON-RPC or a change hook).
 * Pure string logic, no lws, no loop: http.c and http-ws.c ask, the unit
 * test (tests/unit/test-http-origin.c) checks every rule.
 */
#ifndef KILN_MASTER_HTTP_ORIGIN_H
#define KILN_MASTER_HTTP_ORIGIN_H

#include <stdbool.h>

/* What the configuration says about the master's own names (borrowed). */
struct http_origin_cfg {
	const char *url;         /* config 'url' (the public URL), NULL when unset */
	const char *listen_host; /* config 'http' listen host, NULL for the default */
};

enum http_origin_verdict {
	HTTP_ORIGIN_OK = 0,
	HTTP_ORIGIN_BAD_HOST,   /* Host names a host that is not this master */
	HTTP_ORIGIN_BAD_ORIGIN, /* Origin is neither the request's host nor the url's */
	HTTP_ORIGIN_CROSS_SITE, /* Sec-Fetch-Site: cross-site */
};

/* Whether a Host header value (borrowed; NULL or "" when the request has
 * none) is allowed: absent, an IP literal (with or without port, IPv6 in
 * brackets), "localhost", the host of cfg->url, or cfg->listen_host; any
 * name when the listen host is a wildcard (0.0.0.0, ::) and no url is set.
 * Names compare without case and without a trailing dot. */
bool http_origin_host_ok(const struct http_origin_cfg *cfg, const char *host);

/* Whether an Origin header value is allowed for a request that came with
 * Host header host: absent (NULL or ""), same host and port as host, or
 * the origin of cfg->url.  "null" and anything unparsable are refused. */
bool http_origin_origin_ok(const struct http_origin_cfg *cfg, const char *host, const char *origin);

/* The whole check for one request; headers borrowed, NULL when absent.
 * state_changing: a POST or a /ws upgrade; only those look at Origin and
 * Sec-Fetch-Site (a plain GET answers with data the browser will not show
 * a cross-site page, and a Host check has already covered rebinding). */
enum http_origin_verdict http_origin_check(const struct http_origin_cfg *cfg, const char *host,
					   const char *origin, const char *sec_fetch_site,
					   bool state_changing);

/* The refusal's message, for a 403 body ("" for HTTP_ORIGIN_OK). */
const char *http_origin_verdict_str(enum http_origin_verdict v);

#endif
