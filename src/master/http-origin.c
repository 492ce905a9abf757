/*
 * Host and Origin checks of the HTTP listener (http-origin.h): parses the
 * authority of a Host header, an Origin and the configured URL into host
 * and port, and compares them.  Pure: no allocation, no lws, no loop.
 */
#include "master/http-origin.h"

#include <arpa/inet.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

/* One "host[:port]" taken apart (host borrowed from the parsed text,
 * brackets of an IPv6 literal removed). */
struct http_origin_auth {
	const char *host;
	size_t hostlen;
	int port; /* -1 when absent */
	bool ipv6;
	bool https; /* parsed from a URL or Origin with the https scheme */
};

static bool http_origin_port_parse(const char *p, size_t n, int *ret)
{
	if (n == 0 || n > 5)
		return false;
	int v = 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10 + (p[i] - '0');
	}
	if (v > 65535)
		return false;
	*ret = v;
	return true;
}

/* p[0..n): "name", "name:port", "[v6]" or "[v6]:port". */
static bool http_origin_auth_parse(const char *p, size_t n, struct http_origin_auth *ret)
{
	struct http_origin_auth a = {.port = -1};
	const char *rest;

	if (n == 0)
		return false;
	if (p[0] == '[') {
		const char *e = memchr(p, ']', n);
		if (!e)
			return false;
		a.host = p + 1;
		a.hostlen = (size_t)(e - p - 1);
		a.ipv6 = true;
		rest = e + 1;
	} else {
		const char *e = memchr(p, ':', n);
		a.host = p;
		a.hostlen = e ? (size_t)(e - p) : n;
		rest = p + a.hostlen;
	}
	size_t restlen = n - (size_t)(rest - p);
	if (restlen) {
		if (rest[0] != ':' || !http_origin_port_parse(rest + 1, restlen - 1, &a.port))
			return false;
	}
	/* "name." is the same name as "name" */
	if (!a.ipv6 && a.hostlen > 1 && a.host[a.hostlen - 1] == '.')
		a.hostlen--;
	if (a.hostlen == 0)
		return false;
	for (size_t i = 0; i < a.hostlen; i++) {
		unsigned char c = (unsigned char)a.host[i];
		if (c <= ' ' || c >= 0x7f || c == '/' || c == '@' || c == '\\' ||
		    (!a.ipv6 && (c == '[' || c == ']')))
			return false;
	}
	*ret = a;
	return true;
}

static bool http_origin_is_ip(const struct http_origin_auth *a)
{
	char tmp[64];
	unsigned char bin[16];

	if (a->hostlen >= sizeof(tmp))
		return false;
	memcpy(tmp, a->host, a->hostlen);
	tmp[a->hostlen] = '\0';
	return inet_pton(a->ipv6 ? AF_INET6 : AF_INET, tmp, bin) == 1;
}

/* An IPv6 literal without brackets, alone or followed by ":port" (kiln's
 * own client wrote its Host header so): an address, never a DNS name. */
static bool http_origin_bare_ipv6(const char *host)
{
	char tmp[64];
	unsigned char bin[16];
	size_t n = strlen(host);

	if (host[0] == '[' || !strchr(host, ':') || strchr(host, ':') == strrchr(host, ':') ||
	    n >= sizeof(tmp))
		return false;
	memcpy(tmp, host, n + 1);
	if (inet_pton(AF_INET6, tmp, bin) == 1)
		return true;
	char *colon = strrchr(tmp, ':');
	int port;
	if (!http_origin_port_parse(colon + 1, strlen(colon + 1), &port))
		return false;
	*colon = '\0';
	return inet_pton(AF_INET6, tmp, bin) == 1;
}

static bool http_origin_name_eq(const struct http_origin_auth *a, const char *name, size_t n)
{
	if (n > 1 && name[n - 1] == '.')
		n--;
	return a->hostlen == n && strncasecmp(a->host, name, n) == 0;
}

/* "scheme://authority" at the start of text (anything from the first '/',
 * '?' or '#' after it ignored when allow_path); user info is skipped.  The
 * default port of the scheme fills a missing one. */
static bool http_origin_url_parse(const char *text, bool allow_path, struct http_origin_auth *ret)
{
	int defport;
	size_t sl;

	if (!strncasecmp(text, "http://", 7)) {
		defport = 80;
		sl = 7;
	} else if (!strncasecmp(text, "https://", 8)) {
		defport = 443;
		sl = 8;
	} else {
		return false;
	}
	const char *auth = text + sl;
	size_t n = strcspn(auth, "/?#");
	if (auth[n] && !allow_path)
		return false;
	if (allow_path) {
		const char *at = NULL;
		for (size_t i = 0; i < n; i++)
			if (auth[i] == '@')
				at = auth + i;
		if (at) {
			n -= (size_t)(at + 1 - auth);
			auth = at + 1;
		}
	}
	if (!http_origin_auth_parse(auth, n, ret))
		return false;
	ret->https = defport == 443;
	if (ret->port < 0)
		ret->port = defport;
	return true;
}

static bool http_origin_wildcard(const char *listen_host)
{
	return listen_host && (!strcmp(listen_host, "0.0.0.0") || !strcmp(listen_host, "::") ||
			       !strcmp(listen_host, "[::]") || !strcmp(listen_host, "*"));
}

bool http_origin_host_ok(const struct http_origin_cfg *cfg, const char *host)
{
	struct http_origin_auth a, u;

	if (!host || !*host)
		return true; /* HTTP/1.0 without Host: no browser sends that */
	if (http_origin_bare_ipv6(host))
		return true;
	if (!http_origin_auth_parse(host, strlen(host), &a))
		return false;
	if (http_origin_is_ip(&a) || http_origin_name_eq(&a, "localhost", 9))
		return true;
	/* Listening on every address with no 'url': the master cannot know the
	 * names it is reached by, so it takes them all (docs/CONFIG.md 'url'). */
	if (http_origin_wildcard(cfg->listen_host) && (!cfg->url || !*cfg->url))
		return true;
	if (cfg->listen_host && *cfg->listen_host &&
	    http_origin_name_eq(&a, cfg->listen_host, strlen(cfg->listen_host)))
		return true;
	if (cfg->url && http_origin_url_parse(cfg->url, true, &u) &&
	    http_origin_name_eq(&a, u.host, u.hostlen))
		return true;
	return false;
}

static bool http_origin_same(const struct http_origin_auth *a, const struct http_origin_auth *b)
{
	return a->port == b->port && a->ipv6 == b->ipv6 &&
	       http_origin_name_eq(a, b->host, b->hostlen);
}

bool http_origin_origin_ok(const struct http_origin_cfg *cfg, const char *host, const char *origin)
{
	struct http_origin_auth o, h, u;

	if (!origin || !*origin)
		return true; /* not a browser, or a same-origin GET */
	if (!http_origin_url_parse(origin, false, &o))
		return false; /* "null", file://, garbage */
	if (host && *host && http_origin_auth_parse(host, strlen(host), &h)) {
		if (h.port < 0) /* the browser left out the scheme's default port */
			h.port = o.port;
		if (http_origin_same(&o, &h))
			return true;
	}
	if (cfg->url && http_origin_url_parse(cfg->url, true, &u) && o.https == u.https &&
	    http_origin_same(&o, &u))
		return true;
	return false;
}

enum http_origin_verdict http_origin_check(const struct http_origin_cfg *cfg, const char *host,
					   const char *origin, const char *sec_fetch_site,
					   bool state_changing)
{
	if (!http_origin_host_ok(cfg, host))
		return HTTP_ORIGIN_BAD_HOST;
	if (!state_changing)
		return HTTP_ORIGIN_OK;
	if (sec_fetch_site && !strcasecmp(sec_fetch_site, "cross-site"))
		return HTTP_ORIGIN_CROSS_SITE;
	if (!http_origin_origin_ok(cfg, host, origin))
		return HTTP_ORIGIN_BAD_ORIGIN;
	return HTTP_ORIGIN_OK;
}

const char *http_origin_verdict_str(enum http_origin_verdict v)
{
	switch (v) {
	case HTTP_ORIGIN_OK:
		return "";
	case HTTP_ORIGIN_BAD_HOST:
		return "Host header names a host this master does not serve (set 'url' in "
		       "master.lua to the name clients use)";
	case HTTP_ORIGIN_BAD_ORIGIN:
		return "cross-origin (cross-site) request refused: Origin is neither this host nor "
		       "the "
		       "configured url";
	case HTTP_ORIGIN_CROSS_SITE:
		return "cross-site request refused (Sec-Fetch-Site: cross-site)";
	}
	return "refused";
}
