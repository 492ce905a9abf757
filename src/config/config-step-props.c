/*
 * Slice "misc" of the step library, config side: set_property { },
 * set_properties { }, set_property_from_command { }, log { } (run by
 * steps/step-setprop.c, step-propcmd.c, step-log.c), and the options every
 * kind takes (do_step_if, hide_step_if, description, description_done,
 * retry, decode_rc), read after a kind's declaration by config-step.c.
 * Slice "measure" adds the numbers = { } option here.
 */
#define PCRE2_CODE_UNIT_WIDTH 8

#include "config/config-internal.h"
#include "common/limits.h"
#include "common/xalloc.h"

#include <jansson.h>
#include <lauxlib.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

/* Buildbot's results names, in their numbers' order (db.h RESULTS_*). */
static const char *const config_props_results[] = {"success",   "warnings", "failure",  "skipped",
						   "exception", "retry",    "cancelled"};

/* A boolean or a function (the key's value at top): *ret_fn or *ret_b. */
static void config_props_bool_fn(lua_State *L, const char *what, const char *key, int *ret_fn,
				 bool *ret_b)
{
	int t = dsl_get(L, 1, key);
	if (t == LUA_TBOOLEAN)
		*ret_b = lua_toboolean(L, -1);
	else if (t == LUA_TFUNCTION)
		*ret_fn = config_ref_fn(L, lua_gettop(L));
	else if (t != LUA_TNIL)
		config_raise(L, "%s: '%s' must be a boolean or a function (got %s)", what, key,
			     dsl_typename(L, -1));
	lua_pop(L, 1);
}

/* A string, interpolate(...) or a function into r. */
static void config_props_rstr(lua_State *L, const char *what, const char *key,
			      struct config_rstr *r)
{
	int t = dsl_get(L, 1, key);
	if (t != LUA_TNIL) {
		if (t != LUA_TSTRING && t != LUA_TFUNCTION && !luaL_testudata(L, -1, MT_INTERP))
			config_raise(L,
				     "%s: '%s' must be a string, interpolate(...) or a function "
				     "(got %s)",
				     what, key, dsl_typename(L, -1));
		config_read_rstr(L, lua_gettop(L), what, key, r);
	}
	lua_pop(L, 1);
}

static int config_props_results_of(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(config_props_results); i++)
		if (!strcmp(name, config_props_results[i]))
			return (int)i;
	return -1;
}

/* decode_rc = { [0] = "success", [1] = "warnings", ... } */
static void config_props_decode_rc(lua_State *L, const char *what, struct config_step *s)
{
	if (dsl_get(L, 1, "decode_rc") == LUA_TNIL) {
		lua_pop(L, 1);
		return;
	}
	int t = lua_gettop(L);
	if (lua_type(L, t) != LUA_TTABLE)
		config_raise(L, "%s: 'decode_rc' must be a table { [rc] = \"results\" } (got %s)",
			     what, dsl_typename(L, t));
	size_t n = 0;
	lua_pushnil(L);
	while (lua_next(L, t)) {
		lua_pop(L, 1);
		if (++n > KILN_DECODE_RC_MAX)
			config_raise(L, "%s: 'decode_rc' has over %u entries", what,
				     (unsigned)KILN_DECODE_RC_MAX);
	}
	if (n == 0)
		config_raise(L, "%s: 'decode_rc' must not be empty", what);
	config_charge(L, n * sizeof(*s->decode_rc));
	s->decode_rc = xcalloc(n, sizeof(*s->decode_rc));
	lua_pushnil(L);
	while (lua_next(L, t)) {
		if (!lua_isinteger(L, -2))
			config_raise(L, "%s: 'decode_rc' keys must be exit codes (integers)", what);
		const char *v = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
		int res = v ? config_props_results_of(v) : -1;
		if (res < 0)
			config_raise(L,
				     "%s: decode_rc[%lld] must be \"success\", \"warnings\", "
				     "\"failure\", \"skipped\", \"exception\", \"retry\" or "
				     "\"cancelled\"",
				     what, (long long)lua_tointeger(L, -2));
		struct config_decode_rc *d = &s->decode_rc[s->ndecode_rc++];
		d->rc = (long long)lua_tointeger(L, -2);
		d->results = res;
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
}

/* ---- numbers = { NAME = regex | { file = PATH } | function } (slice "measure") ---- */

/* Kinds that run no command on a worker have no output nor workdir. */
static bool config_props_numbers_kind(enum config_step_kind k)
{
	return k != CONFIG_STEP_SETPROP && k != CONFIG_STEP_LOG && k != CONFIG_STEP_TRIGGER;
}

/* The transfers run a command in a workdir, but it writes no stdout for a
 * regex to search. */
static bool config_props_numbers_no_stdout(enum config_step_kind k)
{
	return k == CONFIG_STEP_FILE_UPLOAD || k == CONFIG_STEP_DIRECTORY_UPLOAD ||
	       k == CONFIG_STEP_FILE_DOWNLOAD || k == CONFIG_STEP_STRING_DOWNLOAD ||
	       k == CONFIG_STEP_JSON_PROPERTIES_DOWNLOAD;
}

/* A regex with at least one capture group; raises naming it. */
static void config_props_number_re(lua_State *L, const char *what, const char *name, const char *re,
				   size_t len)
{
	if (len == 0 || len > KILN_WARNSCAN_MAX_PATTERN_LEN)
		config_raise(L, "%s: numbers: '%s': the regex must be 1 to %u bytes long", what,
			     name, (unsigned)KILN_WARNSCAN_MAX_PATTERN_LEN);
	int code;
	PCRE2_SIZE off;
	pcre2_code *c = pcre2_compile((PCRE2_SPTR)re, len, PCRE2_NEVER_UTF, &code, &off, NULL);
	if (!c) {
		PCRE2_UCHAR msg[160];
		pcre2_get_error_message(code, msg, sizeof(msg));
		config_raise(L,
			     "%s: numbers: '%s': '%.60s' is not a valid regular expression: %s "
			     "at offset %zu",
			     what, name, re, (const char *)msg, (size_t)off);
	}
	uint32_t groups = 0;
	pcre2_pattern_info(c, PCRE2_INFO_CAPTURECOUNT, &groups);
	pcre2_code_free(c);
	if (groups < 1)
		config_raise(L,
			     "%s: numbers: '%s': the regex '%.60s' needs a capture group (the "
			     "number)",
			     what, name, re);
}

/* The value at the top of the stack into n (its name already set); decl is
 * the step's kind as master.lua declares it. */
static void config_props_number(lua_State *L, const char *decl, const char *what,
				const struct config_step *s, struct config_number *n)
{
	static const char *const keys[] = {"file", NULL};
	int v = lua_gettop(L);
	size_t len;
	const char *t;
	switch (lua_type(L, v)) {
	case LUA_TSTRING:
		t = lua_tolstring(L, v, &len);
		if (config_props_numbers_no_stdout(s->kind))
			config_raise(L,
				     "%s: numbers: '%s': %s has no stdout to search: give "
				     "{ file = \"path\" } or a function",
				     what, n->name, decl);
		config_props_number_re(L, what, n->name, t, len);
		n->source = CONFIG_NUMBER_REGEX;
		n->text = config_strdup(L, t, len);
		return;
	case LUA_TFUNCTION:
		n->source = CONFIG_NUMBER_FN;
		n->fn = config_ref_fn(L, v);
		return;
	case LUA_TTABLE: {
		char fwhat[300];
		snprintf(fwhat, sizeof(fwhat), "%s: numbers: '%s'", what, n->name);
		dsl_check_keys(L, v, fwhat, keys);
		if (dsl_get(L, v, "file") != LUA_TSTRING)
			config_raise(L, "%s: 'file' must be a path (got %s)", fwhat,
				     dsl_typename(L, -1));
		t = lua_tolstring(L, -1, &len);
		if (len == 0 || strlen(t) != len)
			config_raise(L, "%s: 'file' must be a path", fwhat);
		dsl_check_relpath(L, fwhat, "file", t, len);
		if (s->kind == CONFIG_STEP_MASTERSHELL)
			config_raise(L, "%s: master_shell has no worker to read a file on", fwhat);
		n->source = CONFIG_NUMBER_FILE;
		n->text = config_strdup(L, t, len);
		lua_settop(L, v);
		return;
	}
	default:
		config_raise(L,
			     "%s: numbers: '%s' must be a regex, { file = \"path\" } or a "
			     "function (got %s)",
			     what, n->name, dsl_typename(L, v));
	}
}

static int config_props_number_cmp(const void *a, const void *b)
{
	return strcmp(((const struct config_number *)a)->name,
		      ((const struct config_number *)b)->name);
}

static void config_props_numbers(lua_State *L, const char *decl, const char *what,
				 struct config_step *s)
{
	if (dsl_get(L, 1, "numbers") == LUA_TNIL) {
		lua_pop(L, 1);
		return;
	}
	int t = lua_gettop(L);
	if (!config_props_numbers_kind(s->kind))
		config_raise(L, "%s: 'numbers' needs a step that runs a command", what);
	if (lua_type(L, t) != LUA_TTABLE)
		config_raise(L,
			     "%s: 'numbers' must be a table { NAME = regex | { file = ... } | "
			     "function } (got %s)",
			     what, dsl_typename(L, t));
	_Static_assert(KILN_STEP_NUMBERS_MAX <= 65535, "config_step.nnumbers is an unsigned short");
	size_t n = 0;
	lua_pushnil(L);
	while (lua_next(L, t)) {
		lua_pop(L, 1);
		if (++n > KILN_STEP_NUMBERS_MAX)
			config_raise(L, "%s: 'numbers' has over %u entries", what,
				     (unsigned)KILN_STEP_NUMBERS_MAX);
	}
	if (n == 0)
		config_raise(L, "%s: 'numbers' must not be empty", what);
	config_charge(L, n * sizeof(*s->numbers));
	s->numbers = xcalloc(n, sizeof(*s->numbers));
	lua_pushnil(L);
	while (lua_next(L, t)) {
		if (lua_type(L, -2) != LUA_TSTRING)
			config_raise(L, "%s: 'numbers' keys must be names", what);
		size_t klen;
		const char *k = lua_tolstring(L, -2, &klen);
		dsl_check_name(L, what, "numbers", k, klen);
		struct config_number *e = &s->numbers[s->nnumbers++];
		e->name = config_strdup(L, k, klen);
		config_props_number(L, decl, what, s, e);
		lua_pop(L, 1);
	}
	qsort(s->numbers, s->nnumbers, sizeof(*s->numbers), config_props_number_cmp);
	lua_pop(L, 1);
}

static void config_props_numbers_copy(lua_State *L, struct config_step *dst,
				      const struct config_step *src)
{
	if (!src->numbers)
		return;
	config_charge(L, src->nnumbers * sizeof(*dst->numbers));
	dst->numbers = xcalloc(src->nnumbers, sizeof(*dst->numbers));
	for (size_t i = 0; i < src->nnumbers; i++) {
		const struct config_number *q = &src->numbers[i];
		struct config_number *p = &dst->numbers[dst->nnumbers++];
		p->source = q->source;
		p->fn = q->fn;
		p->name = config_strdup(L, q->name, strlen(q->name));
		if (q->text)
			p->text = config_strdup(L, q->text, strlen(q->text));
	}
}

static void config_props_numbers_release(struct config_step *s)
{
	for (size_t i = 0; s->numbers && i < s->nnumbers; i++) {
		free(s->numbers[i].name);
		free(s->numbers[i].text);
	}
	free(s->numbers);
	s->numbers = NULL;
	s->nnumbers = 0;
}

void config_step_options(lua_State *L, const char *decl, struct config_step *s)
{
	char what[256];
	if (lua_type(L, 1) != LUA_TTABLE)
		return;
	dsl_what(L, what, sizeof(what), decl, s->name);
	int top = lua_gettop(L);
	bool run = true;
	config_props_bool_fn(L, what, "do_step_if", &s->do_step_if_fn, &run);
	s->skip = !run;
	config_props_bool_fn(L, what, "hide_step_if", &s->hide_fn, &s->hidden);
	config_props_rstr(L, what, "description", &s->description);
	config_props_rstr(L, what, "description_done", &s->description_done);
	/* git { retry = { delay, repeats } } is the source step's own (Buildbot's) */
	if (s->kind != CONFIG_STEP_GIT)
		s->retry = (int)dsl_opt_int(L, 1, what, "retry", 0, 0, KILN_STEP_RETRY_MAX);
	config_props_decode_rc(L, what, s);
	config_props_numbers(L, decl, what, s); /* slice "measure" */
	lua_settop(L, top);
}

void config_step_options_copy(lua_State *L, struct config_step *dst, const struct config_step *src)
{
	/* never shared with src, even when a copy below raises */
	dst->numbers = NULL;
	dst->nnumbers = 0;
	config_rstr_copy(L, &dst->description, &src->description);
	config_rstr_copy(L, &dst->description_done, &src->description_done);
	if (src->decode_rc) {
		config_charge(L, src->ndecode_rc * sizeof(*dst->decode_rc));
		dst->decode_rc = xcalloc(src->ndecode_rc, sizeof(*dst->decode_rc));
		memcpy(dst->decode_rc, src->decode_rc, src->ndecode_rc * sizeof(*dst->decode_rc));
		dst->ndecode_rc = src->ndecode_rc;
	}
	config_props_numbers_copy(L, dst, src); /* slice "measure" */
}

void config_step_options_release(struct config_step *s)
{
	free(s->description.text);
	free(s->description_done.text);
	free(s->decode_rc);
	config_props_numbers_release(s); /* slice "measure" */
}

/* ---- set_property { } / set_properties { } -------------------------------- */

/* The value at idx into p: a constant as JSON text, or a renderable. */
static void config_props_value(lua_State *L, int idx, const char *what, struct config_step_prop *p)
{
	json_t *j = NULL;
	size_t len;
	const char *s;
	switch (lua_type(L, idx)) {
	case LUA_TSTRING:
		s = lua_tolstring(L, idx, &len);
		j = json_stringn(s, len);
		if (!j)
			config_raise(L, "%s: property '%s' is not UTF-8 text", what, p->name);
		break;
	case LUA_TNUMBER:
		j = lua_isinteger(L, idx) ? json_integer((json_int_t)lua_tointeger(L, idx))
					  : json_real(lua_tonumber(L, idx));
		if (!j)
			config_raise(L, "%s: property '%s' is not a finite number", what, p->name);
		break;
	case LUA_TBOOLEAN:
		j = json_boolean(lua_toboolean(L, idx));
		break;
	default:
		if (lua_type(L, idx) == LUA_TFUNCTION || luaL_testudata(L, idx, MT_INTERP)) {
			config_read_rstr(L, idx, what, "value", &p->value);
			return;
		}
		config_raise(L,
			     "%s: property '%s' must be a string, a number, a boolean, "
			     "interpolate(...) or a function (got %s)",
			     what, p->name, dsl_typename(L, idx));
	}
	char *text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(j);
	if (!text)
		config_raise(L, "%s: property '%s': cannot encode its value", what, p->name);
	p->json = config_strdup(L, text, strlen(text));
	free(text);
}

static struct config_step *config_props_new(lua_State *L, const char *decl,
					    enum config_step_kind kind, const char *const *keys,
					    char *what, size_t wsize)
{
	int line = config_line(L);
	dsl_check_table_arg(L, decl);
	dsl_what(L, what, wsize, decl, NULL);
	dsl_check_keys(L, 1, what, keys);
	struct config_step flags = dsl_step_flags(L, what);
	struct config_step *step = lua_newuserdatauv(L, sizeof(*step), 1 /* fp (config-fp.c) */);
	*step = flags;
	step->kind = kind;
	step->line = line;
	step->timeout = 1200;
	luaL_setmetatable(L, MT_STEP);
	return step;
}

static void config_props_name(lua_State *L, const char *what, struct config_step *step,
			      const char *def)
{
	const char *name = dsl_opt_name(L, 1, what, "name");
	if (!name)
		name = def;
	step->name = config_strdup(L, name, strlen(name));
}

int config_step_set_property(lua_State *L)
{
	static const char *const keys[] = {"name", "property", "value", DSL_STEP_FLAG_KEYS, NULL};
	char what[256];
	struct config_step *step =
		config_props_new(L, "set_property", CONFIG_STEP_SETPROP, keys, what, sizeof(what));
	int ud = lua_gettop(L);
	const char *prop = dsl_req_name(L, 1, what, "property");
	config_charge(L, sizeof(*step->props));
	step->props = xcalloc(1, sizeof(*step->props));
	step->nprops = 1;
	step->props[0].name = config_strdup(L, prop, strlen(prop));
	if (dsl_get(L, 1, "value") == LUA_TNIL)
		config_raise(L, "%s: 'value' is required", what);
	config_props_value(L, lua_gettop(L), what, &step->props[0]);
	lua_settop(L, ud);
	config_props_name(L, what, step, "SetProperty");
	lua_settop(L, ud);
	return 1;
}

int config_step_set_properties(lua_State *L)
{
	static const char *const keys[] = {"name", "properties", DSL_STEP_FLAG_KEYS, NULL};
	char what[256];
	struct config_step *step = config_props_new(L, "set_properties", CONFIG_STEP_SETPROP, keys,
						    what, sizeof(what));
	int ud = lua_gettop(L);
	if (dsl_get(L, 1, "properties") != LUA_TTABLE)
		config_raise(L, "%s: 'properties' must be a table of name = value (got %s)", what,
			     dsl_typename(L, -1));
	int t = lua_gettop(L);
	size_t n = 0;
	lua_pushnil(L);
	while (lua_next(L, t)) {
		lua_pop(L, 1);
		n++;
	}
	if (n > KILN_SETPROP_MAX)
		config_raise(L, "%s: over %u properties", what, (unsigned)KILN_SETPROP_MAX);
	config_charge(L, (n + 1) * sizeof(*step->props));
	step->props = xcalloc(n + 1, sizeof(*step->props));
	lua_pushnil(L);
	while (lua_next(L, t)) {
		if (lua_type(L, -2) != LUA_TSTRING)
			config_raise(L, "%s: 'properties' keys must be property names", what);
		size_t klen;
		const char *k = lua_tolstring(L, -2, &klen);
		dsl_check_name(L, what, "properties", k, klen);
		struct config_step_prop *p = &step->props[step->nprops++];
		p->name = config_strdup(L, k, klen);
		config_props_value(L, lua_gettop(L), what, p);
		lua_pop(L, 1);
	}
	lua_settop(L, ud);
	config_props_name(L, what, step, "SetProperties");
	lua_settop(L, ud);
	return 1;
}

/* ---- set_property_from_command { } ---------------------------------------- */

int config_step_propcmd(lua_State *L)
{
	static const char *const extra[] = {"property", "extract", "extract_fn", NULL};
	struct config_step *step =
		config_step_command_new(L, "set_property_from_command", CONFIG_STEP_PROPCMD, extra);
	int ud = lua_gettop(L);
	char what[256];
	dsl_what(L, what, sizeof(what), "set_property_from_command", step->name);
	const char *prop = dsl_opt_name(L, 1, what, "property");
	size_t rlen = 0;
	const char *re = dsl_opt_string(L, 1, what, "extract", &rlen);
	int ft = dsl_get(L, 1, "extract_fn");
	if (ft != LUA_TNIL && ft != LUA_TFUNCTION)
		config_raise(L, "%s: 'extract_fn' must be a function (got %s)", what,
			     dsl_typename(L, -1));
	if (ft == LUA_TFUNCTION && (prop || re))
		config_raise(L, "%s: 'extract_fn' excludes 'property' and 'extract'", what);
	if (ft != LUA_TFUNCTION && !prop && !re)
		config_raise(L, "%s: give 'property', 'extract' or 'extract_fn'", what);
	if (ft == LUA_TFUNCTION)
		step->extract_fn = config_ref_fn(L, lua_gettop(L));
	lua_pop(L, 1);
	if (prop)
		step->property = config_strdup(L, prop, strlen(prop));
	if (re) {
		if (rlen == 0 || rlen > KILN_WARNSCAN_MAX_PATTERN_LEN)
			config_raise(L, "%s: extract must be 1 to %u bytes long", what,
				     (unsigned)KILN_WARNSCAN_MAX_PATTERN_LEN);
		int code;
		PCRE2_SIZE off;
		pcre2_code *c = pcre2_compile((PCRE2_SPTR)re, rlen, 0, &code, &off, NULL);
		if (!c) {
			PCRE2_UCHAR msg[160];
			pcre2_get_error_message(code, msg, sizeof(msg));
			config_raise(L,
				     "%s: extract: '%.60s' is not a valid regular expression: "
				     "%s at offset %zu",
				     what, re, (const char *)msg, (size_t)off);
		}
		uint32_t named = 0;
		pcre2_pattern_info(c, PCRE2_INFO_NAMECOUNT, &named);
		pcre2_code_free(c);
		if (!named && !prop)
			config_raise(L,
				     "%s: extract without named groups needs 'property' (the "
				     "name of what it matches)",
				     what);
		step->extract = config_strdup(L, re, rlen);
	}
	lua_settop(L, ud);
	return 1;
}

/* ---- log { } ---------------------------------------------------------------- */

int config_step_log(lua_State *L)
{
	/* name names the step and, without log = "...", its log */
	static const char *const keys[] = {"name", "log", "text", DSL_STEP_FLAG_KEYS, NULL};
	char what[256];
	struct config_step *step =
		config_props_new(L, "log", CONFIG_STEP_LOG, keys, what, sizeof(what));
	int ud = lua_gettop(L);
	const char *log = dsl_opt_name(L, 1, what, "log");
	if (!log)
		log = dsl_opt_name(L, 1, what, "name");
	if (!log)
		log = "Output"; /* as Buildbot's LogRenderable */
	step->log_name = config_strdup(L, log, strlen(log));
	if (dsl_get(L, 1, "text") == LUA_TNIL)
		config_raise(L, "%s: 'text' is required", what);
	lua_pop(L, 1);
	config_props_rstr(L, what, "text", &step->log_text);
	config_props_name(L, what, step, "Log");
	lua_settop(L, ud);
	return 1;
}

/* ---- master_shell { } -------------------------------------------------------- */

/* Every key of shell { }; workdir is relative to the master's base
 * directory, which is the default. */
int config_step_master_shell(lua_State *L)
{
	struct config_step *step =
		config_step_command_new(L, "master_shell", CONFIG_STEP_MASTERSHELL, NULL);
	if (dsl_get(L, 1, "workdir") == LUA_TNIL) {
		free(step->workdir);
		step->workdir = NULL;
	}
	lua_pop(L, 1);
	return 1;
}

/* ---- copies into builders --------------------------------------------------- */

void config_step_props_copy(lua_State *L, struct config_step *dst, const struct config_step *src)
{
	dst->props = NULL;
	dst->nprops = 0;
	dst->property = dst->extract = NULL;
	if (src->props) {
		config_charge(L, (src->nprops + 1) * sizeof(*dst->props));
		dst->props = xcalloc(src->nprops + 1, sizeof(*dst->props));
		for (size_t i = 0; i < src->nprops; i++) {
			struct config_step_prop *p = &dst->props[dst->nprops++];
			const struct config_step_prop *q = &src->props[i];
			p->name = config_strdup(L, q->name, strlen(q->name));
			if (q->json)
				p->json = config_strdup(L, q->json, strlen(q->json));
			config_rstr_copy(L, &p->value, &q->value);
		}
	}
	if (src->property)
		dst->property = config_strdup(L, src->property, strlen(src->property));
	if (src->extract)
		dst->extract = config_strdup(L, src->extract, strlen(src->extract));
}

void config_step_log_copy(lua_State *L, struct config_step *dst, const struct config_step *src)
{
	dst->log_name = dst->log_text.text = NULL; /* never src's, even when a copy raises */
	if (src->log_name)
		dst->log_name = config_strdup(L, src->log_name, strlen(src->log_name));
	config_rstr_copy(L, &dst->log_text, &src->log_text);
}

void config_step_props_release(struct config_step *s)
{
	for (size_t i = 0; s->props && i < s->nprops; i++) {
		free(s->props[i].name);
		free(s->props[i].json);
		free(s->props[i].value.text);
	}
	free(s->props);
	free(s->property);
	free(s->extract);
}

void config_step_log_release(struct config_step *s)
{
	free(s->log_name);
	free(s->log_text.text);
}
