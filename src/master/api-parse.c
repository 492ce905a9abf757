/*
 * Parsers for what REST clients send: Buildbot's query parameters (the
 * "ResultSpec": filters, order, field, limit, offset, property) and the
 * JSON-RPC envelope of control POSTs.  Pure functions, no network and no
 * engine, so tests/fuzz/fuzz-api-json.c drives them directly.
 */
#include "master/api-int.h"

#include "common/err.h"
#include "common/str.h"
#include "common/xalloc.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

bool api_is_num(const char *s)
{
	if (!s || !*s || strlen(s) > 18)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

static const struct {
	const char *name;
	enum db_op op;
} api_ops[] = {
	{"eq", DB_OP_EQ}, {"ne", DB_OP_NE},       {"lt", DB_OP_LT},
	{"le", DB_OP_LE}, {"gt", DB_OP_GT},       {"ge", DB_OP_GE},
	{"in", DB_OP_IN}, {"notin", DB_OP_NOTIN}, {"contains", DB_OP_CONTAINS},
};

void api_rspec_release(struct api_rspec *rs)
{
	for (size_t i = 0; i < rs->nfilters; i++) {
		free((void *)rs->filters[i].values);
		free(rs->filter_args[i]);
	}
	free(rs->filters);
	free(rs->filter_args);
	free(rs->values_alloc);
	free(rs->order);
	free(rs->fields);
	free(rs->props);
	for (size_t i = 0; i < rs->nowned; i++)
		free(rs->owned[i]);
	free(rs->owned);
	*rs = (struct api_rspec){.limit = -1};
}

/* Appends an empty filter; returns its index. */
static size_t api_rspec_push(struct api_rspec *rs, const char *argname)
{
	/* the three parallel arrays share one allocated count */
	size_t alloc = rs->filters_alloc;
	ARRAY_GROW(rs->filters, rs->nfilters + 1, alloc);
	alloc = rs->filters_alloc;
	ARRAY_GROW(rs->filter_args, rs->nfilters + 1, alloc);
	alloc = rs->filters_alloc;
	ARRAY_GROW(rs->values_alloc, rs->nfilters + 1, alloc);
	rs->filters_alloc = alloc;
	rs->filter_args[rs->nfilters] = xstrdup(argname);
	rs->filters[rs->nfilters] = (struct db_filter){0};
	rs->values_alloc[rs->nfilters] = 0;
	return rs->nfilters++;
}

static void api_rspec_add_value(struct api_rspec *rs, size_t i, const char *v)
{
	struct db_filter *f = &rs->filters[i];
	const char **vals = (const char **)f->values;
	ARRAY_GROW(vals, f->nvalues + 1, rs->values_alloc[i]);
	vals[f->nvalues++] = v;
	f->values = vals;
}

void api_rspec_add_eq(struct api_rspec *rs, const char *field, const char *value)
{
	/* path filters go first, so they are never blamed for a bad value */
	ARRAY_GROW(rs->owned, rs->nowned + 2, rs->owned_alloc);
	char *f = rs->owned[rs->nowned++] = xstrdup(field);
	char *v = rs->owned[rs->nowned++] = xstrdup(value);
	size_t i = api_rspec_push(rs, field);
	rs->filters[i].field = f;
	rs->filters[i].op = DB_OP_EQ;
	api_rspec_add_value(rs, i, v);
	if (rs->nfixed + 1 < rs->nfilters) {
		/* move it in front of the query filters */
		struct db_filter tmp = rs->filters[rs->nfilters - 1];
		char *targ = rs->filter_args[rs->nfilters - 1];
		size_t talloc = rs->values_alloc[rs->nfilters - 1];
		size_t nmove = rs->nfilters - 1 - rs->nfixed;
		memmove(&rs->filters[rs->nfixed + 1], &rs->filters[rs->nfixed],
			nmove * sizeof(*rs->filters));
		memmove(&rs->filter_args[rs->nfixed + 1], &rs->filter_args[rs->nfixed],
			nmove * sizeof(char *));
		memmove(&rs->values_alloc[rs->nfixed + 1], &rs->values_alloc[rs->nfixed],
			nmove * sizeof(size_t));
		rs->filters[rs->nfixed] = tmp;
		rs->filter_args[rs->nfixed] = targ;
		rs->values_alloc[rs->nfixed] = talloc;
	}
	rs->nfixed++;
}

void api_rspec_add_eq_i64(struct api_rspec *rs, const char *field, int64_t value)
{
	char v[32];
	snprintf(v, sizeof(v), "%" PRId64, value);
	api_rspec_add_eq(rs, field, v);
}

static int api_parse_count(const char *v, int64_t *ret)
{
	long long n;
	if (str_to_i64(v, &n) < 0 || n < 0)
		return -EINVAL;
	*ret = n;
	return 0;
}

static void api_push_str(const char ***arr, size_t *n, size_t *alloc, const char *s)
{
	ARRAY_GROW(*arr, *n + 1, *alloc);
	(*arr)[(*n)++] = s;
}

int api_rspec_parse(enum db_resource res, const struct http_arg *args, size_t nargs,
		    bool allow_props, struct api_rspec *ret, char **ret_err)
{
	struct api_rspec rs = {.limit = -1};

	for (size_t i = 0; i < nargs; i++) {
		const char *name = args[i].name, *value = args[i].value;

		if (!strcmp(name, "limit")) {
			if (api_parse_count(value, &rs.limit) < 0)
				goto fail_msg_limit;
			continue;
		}
		if (!strcmp(name, "offset")) {
			if (api_parse_count(value, &rs.offset) < 0)
				goto fail_msg_offset;
			continue;
		}
		if (!strcmp(name, "order") || !strcmp(name, "field")) {
			const char *f = value[0] == '-' && name[0] == 'o' ? value + 1 : value;
			if (!db_field_known(res, f)) {
				*ret_err = xasprintf("no such field '%s'", f);
				goto fail;
			}
			if (name[0] == 'o')
				api_push_str(&rs.order, &rs.norder, &rs.order_alloc, value);
			else
				api_push_str(&rs.fields, &rs.nfields, &rs.fields_alloc, value);
			continue;
		}
		if (!strcmp(name, "property") && allow_props) {
			api_push_str(&rs.props, &rs.nprops, &rs.props_alloc, value);
			continue;
		}

		/* a filter: field or field__op */
		_cleanup_free_ char *field = xstrdup(name);
		char *sep = strstr(field, "__");
		const char *opname = "eq";
		if (sep) {
			*sep = '\0';
			opname = sep + 2;
		}
		if (!db_field_known(res, field)) {
			*ret_err = xasprintf("unrecognized query parameter '%s'", name);
			goto fail;
		}
		size_t k;
		for (k = 0; k < ARRAY_SIZE(api_ops); k++)
			if (!strcmp(api_ops[k].name, opname))
				break;
		if (k == ARRAY_SIZE(api_ops))
			continue; /* Buildbot ignores an unknown operator */

		/* repeated parameters add values to one filter */
		size_t fi = SIZE_MAX;
		for (size_t j = 0; j < rs.nfilters; j++)
			if (!strcmp(rs.filter_args[j], name))
				fi = j;
		if (fi == SIZE_MAX) {
			/* filter_args keeps the full parameter name for messages */
			fi = api_rspec_push(&rs, name);
			ARRAY_GROW(rs.owned, rs.nowned + 1, rs.owned_alloc);
			rs.filters[fi].field = rs.owned[rs.nowned++] = TAKE_PTR(field);
			rs.filters[fi].op = api_ops[k].op;
		}
		api_rspec_add_value(&rs, fi, value);
	}
	*ret = rs;
	return 0;

fail_msg_limit:
	*ret_err = xstrdup("invalid limit");
	goto fail;
fail_msg_offset:
	*ret_err = xstrdup("invalid offset");
fail:
	api_rspec_release(&rs);
	return KILN_EPARSE;
}

/* ---- JSON-RPC ------------------------------------------------------------------------- */

json_t *api_rpc_error_doc(json_t *id, int code, const char *msg)
{
	/* Buildbot's key order, not sorted: jsonrpc, id, error */
	json_t *doc = json_object();
	json_object_set_new(doc, "jsonrpc", json_string("2.0"));
	if (id)
		json_object_set(doc, "id", id);
	json_t *err = json_object();
	json_object_set_new(err, "code", json_integer(code));
	json_object_set_new(err, "message", json_string(msg));
	json_object_set_new(doc, "error", err);
	return doc;
}

void api_rpc_release(struct api_rpc *rpc)
{
	json_decref(rpc->doc);
	*rpc = (struct api_rpc){0};
}

static bool api_ctype_is_json(const char *ct)
{
	static const char want[] = "application/json";
	while (*ct == ' ')
		ct++;
	if (strncasecmp(ct, want, sizeof(want) - 1))
		return false;
	ct += sizeof(want) - 1;
	return *ct == '\0' || *ct == ';' || *ct == ' ';
}

int api_rpc_parse(const char *content_type, const char *body, size_t len, struct api_rpc *ret,
		  json_t **ret_reply)
{
	static const char *const keys[] = {"jsonrpc", "method", "params", "id"};
	json_error_t jerr;

	if (!content_type || !api_ctype_is_json(content_type)) {
		*ret_reply = api_rpc_error_doc(NULL, -32600,
					       "Invalid content-type (use application/json)");
		return 400;
	}
	json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!doc) {
		char *msg = xasprintf("JSON parse error: %s: line %d column %d (char %d)",
				      jerr.text, jerr.line, jerr.column, jerr.position);
		*ret_reply = api_rpc_error_doc(NULL, -32700, msg);
		free(msg);
		return 400;
	}
	if (!json_is_object(doc)) {
		json_decref(doc);
		*ret_reply = api_rpc_error_doc(NULL, -32600, "request must be a JSON object");
		return 400;
	}
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		if (!json_object_get(doc, keys[i])) {
			char *msg = xasprintf("missing key '%s'", keys[i]);
			*ret_reply = api_rpc_error_doc(NULL, -32600, msg);
			free(msg);
			json_decref(doc);
			return 400;
		}
	}
	const char *v = json_string_value(json_object_get(doc, "jsonrpc"));
	if (!v || strcmp(v, "2.0")) {
		json_decref(doc);
		*ret_reply = api_rpc_error_doc(NULL, -32600, "only JSONRPC 2.0 is supported");
		return 400;
	}
	if (!json_is_object(json_object_get(doc, "params"))) {
		json_decref(doc);
		*ret_reply = api_rpc_error_doc(NULL, -32600, "'params' must be an object");
		return 400;
	}
	const char *method = json_string_value(json_object_get(doc, "method"));
	if (!method) {
		json_decref(doc);
		*ret_reply = api_rpc_error_doc(NULL, -32600, "'method' must be a string");
		return 400;
	}
	ret->doc = doc;
	ret->id = json_object_get(doc, "id");
	ret->method = method;
	ret->params = json_object_get(doc, "params");
	return 0;
}
