/*
 * The HTTP front's pure parsers (http.h): query strings split into
 * url-decoded arguments the way lws splits real requests, and the
 * "Authorization: Basic" header of a worker upgrade.  No request, no loop;
 * both are fuzzed (tests/fuzz/fuzz-api-json.c, fuzz-basic-auth.c).
 */
#include "master/http-int.h"

#include "common/buf.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/xalloc.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <strings.h>

/* ---- query strings ----------------------------------------------------------------- */

void http_args_free(struct http_arg *args, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(args[i].name);
		free(args[i].value);
	}
	free(args);
}

static int http_query_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Splits "name=value" (already decoded) at its first '='. */
void http_arg_set(struct http_arg *a, const char *frag, size_t len)
{
	const char *eq = memchr(frag, '=', len);
	if (eq) {
		a->name = xstrndup(frag, (size_t)(eq - frag));
		a->value = xstrndup(eq + 1, len - (size_t)(eq - frag) - 1);
	} else {
		a->name = xstrndup(frag, len);
		a->value = xstrdup("");
	}
}

int http_query_parse(const char *qs, size_t len, size_t max, struct http_arg **ret_args,
		     size_t *ret_n)
{
	struct http_arg *args = NULL;
	size_t n = 0, alloc = 0;
	struct buf frag;
	bool seen_eq = false;
	int r = 0;

	buf_init(&frag, len + 1);
	for (size_t i = 0; i <= len; i++) {
		char c = i < len ? qs[i] : '&';
		bool enc = false;

		if (c == '%' && i < len) {
			int hi = i + 1 < len ? http_query_hexval(qs[i + 1]) : -1;
			int lo = i + 2 < len ? http_query_hexval(qs[i + 2]) : -1;
			if (hi < 0 || lo < 0) {
				r = KILN_EPARSE;
				goto out;
			}
			c = (char)(hi << 4 | lo);
			i += 2;
			enc = true;
		}
		if (c == '\0') {
			r = KILN_EPARSE;
			goto out;
		}
		if (!enc && (c == '&' || c == ';')) {
			if (frag.len) {
				if (n == max) {
					r = -E2BIG;
					goto out;
				}
				ARRAY_GROW(args, n + 1, alloc);
				http_arg_set(&args[n++], frag.ptr, frag.len);
			}
			buf_reset(&frag);
			seen_eq = false;
			continue;
		}
		/* as lws does: an encoded '=' in the name part becomes '_' */
		if (c == '=' && enc && !seen_eq)
			c = '_';
		if (c == '=' && !enc)
			seen_eq = true;
		if (c == '+' && !enc)
			c = ' ';
		if (buf_addch(&frag, c) < 0) { /* cannot pass len + 1 */
			r = -E2BIG;
			goto out;
		}
	}
out:
	buf_release(&frag);
	if (r < 0) {
		http_args_free(args, n);
		return r;
	}
	*ret_args = args;
	*ret_n = n;
	return 0;
}

const char *http_req_arg(const struct http_req *req, const char *name)
{
	for (size_t i = 0; i < req->nargs; i++)
		if (!strcmp(req->args[i].name, name))
			return req->args[i].value;
	return NULL;
}

int http_basic_parse(const char *hdr, char *out, size_t outlen, const char **ret_name,
		     const char **ret_pass)
{
	const char *p = hdr;
	while (*p == ' ')
		p++;
	if (strncasecmp(p, "Basic", 5) || (p[5] != ' ' && p[5] != '\0'))
		return KILN_EPARSE;
	p += 5;
	while (*p == ' ')
		p++;
	/* lws stops decoding silently when out is full: refuse anything that
	 * might not fit rather than take a cut password for a whole one */
	size_t enc = strlen(p);
	if (outlen < 2 || outlen > INT_MAX || enc / 4 * 3 + 3 >= outlen)
		return 1;
	int d = lws_b64_decode_string(p, out, (int)outlen);
	if (d <= 0 || (size_t)d >= outlen)
		return 1;
	out[d] = '\0';
	if (strlen(out) != (size_t)d)
		return 1; /* embedded NUL */
	char *colon = strchr(out, ':');
	if (!colon)
		return 1;
	*colon = '\0';
	*ret_name = out;
	*ret_pass = colon + 1;
	return 0;
}
