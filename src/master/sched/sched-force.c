/*
 * force schedulers: Buildbot's force parameters (reason, username, the
 * sourcestamp overrides, per codebase with a codebases map as Buildbot's
 * CodebaseParameter names them: "lib_branch", priority) plus the scheduler's typed params
 * (string, int, bool, choice) checked against their declaration and
 * turned into build properties.  Called by the JSON-RPC force call.
 * Every field is checked (type, size, allowed values) before anything is
 * stored: the sourcestamp reaches the workers' steps as KILN_* variables.
 */
#define LOG_SUBSYS "sched"

#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/str.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "db/db.h"
#include "master/master.h"
#include "master/sched/sched-int.h"

/* Force parameters that are not turned into build properties. */
static const char *const force_reserved[] = {
	"builderid", "builderNames", "reason",  "username", "owner",    "branch",
	"revision",  "repository",   "project", "codebase", "priority",
};

static const char *force_str(json_t *params, const char *name, const char *def)
{
	const char *v = json_string_value(json_object_get(params, name));
	return v ? v : def;
}

/* A sourcestamp field: the submitted value, or the configured default when
 * the field is missing, null or empty (Buildbot's form sends every field,
 * empty when left alone). */
static const char *force_source(json_t *params, const char *name, const char *def)
{
	const char *v = json_string_value(json_object_get(params, name));
	return v && *v ? v : def ? def : "";
}

/* The sourcestamp fields of a force call, in enum config_force_field order. */
static const char *const force_fields[CONFIG_FORCE_NFIELDS] = {"branch", "revision", "repository",
							       "project", "codebase"};

bool sched_force_ref_ok(const char *v)
{
	size_t len = strlen(v);
	if (len == 0 || len > KILN_FORCE_MAX_REF || v[0] == '-')
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)v[i];
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			  (ch >= '0' && ch <= '9') || strchr("._/+-@~^:,=", ch);
		if (!ok)
			return false;
	}
	return true;
}

bool sched_force_text_ok(const char *v, size_t max)
{
	size_t len = strlen(v);
	if (len > max)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
			return false;
	return true;
}

int sched_param_string(json_t *params, const char *name, size_t max, bool text, const char **ret,
		       char **ret_err)
{
	json_t *v = params ? json_object_get(params, name) : NULL;
	*ret = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v)) {
		*ret_err = xasprintf("'%s' must be a string", name);
		return -EINVAL;
	}
	if (json_string_length(v) > max) {
		*ret_err = xasprintf("'%s' is longer than %zu bytes", name, max);
		return -EINVAL;
	}
	if (strlen(json_string_value(v)) != json_string_length(v)) {
		*ret_err = xasprintf("'%s' contains a NUL character", name);
		return -EINVAL;
	}
	if (text && !sched_force_text_ok(json_string_value(v), max)) {
		*ret_err = xasprintf("'%s' contains control characters", name);
		return -EINVAL;
	}
	*ret = json_string_value(v);
	return 0;
}

/* One sourcestamp field, parameter name, against its default def, the
 * scheduler's allow list or the built-in rule. */
static int force_check_field(const struct config_scheduler *c, json_t *params,
			     enum config_force_field f, const char *name, const char *def,
			     char **ret_err)
{
	static const char *const defaults_only[CONFIG_FORCE_NFIELDS] = {NULL, NULL, "repositories",
									"projects", "codebases"};
	const char *v;
	size_t max = f <= CONFIG_FORCE_REVISION ? KILN_FORCE_MAX_REF : KILN_FORCE_MAX_SOURCE;
	int r = sched_param_string(params, name, max, false, &v, ret_err);
	if (r < 0 || !v || !*v)
		return r; /* missing or empty: the configured default */
	if (!sched_force_text_ok(v, max)) {
		*ret_err = xasprintf("'%s' contains control characters", name);
		return -EINVAL;
	}
	if (def && !strcmp(def, v))
		return 0;
	if (c->allowed[f]) {
		for (size_t i = 0; i < c->nallowed[f]; i++)
			if (!strcmp(c->allowed[f][i], v) || fnmatch(c->allowed[f][i], v, 0) == 0)
				return 0;
		*ret_err = xasprintf("'%s' is not allowed by force scheduler '%s'", name, c->name);
		return -EINVAL;
	}
	if (defaults_only[f]) {
		*ret_err = xasprintf("'%s' must be empty or the configured value (force scheduler "
				     "'%s' sets no '%s')",
				     name, c->name, defaults_only[f]);
		return -EINVAL;
	}
	if (!sched_force_ref_ok(v)) {
		*ret_err = xasprintf("'%s' must look like a ref name or revision (letters, digits, "
				     "._/+-@~^:,= not starting with '-', at most %u bytes)",
				     name, (unsigned)KILN_FORCE_MAX_REF);
		return -EINVAL;
	}
	return 0;
}

/* One sourcestamp field of a scheduler without codebases map. */
static int force_check_source(const struct config_scheduler *c, json_t *params,
			      enum config_force_field f, char **ret_err)
{
	const char *def = f == CONFIG_FORCE_BRANCH       ? c->branch
			  : f == CONFIG_FORCE_REPOSITORY ? c->repository
			  : f == CONFIG_FORCE_PROJECT    ? c->project
			  : f == CONFIG_FORCE_CODEBASE   ? c->codebase
							 : NULL;
	return force_check_field(c, params, f, force_fields[f], def, ret_err);
}

/* The force call's parameter for field f of codebase cb: Buildbot's
 * CodebaseParameter names them CODEBASE_FIELD ("lib_branch"), and just
 * FIELD for the codebase "".  Owned. */
static char *force_cb_param(const struct config_codebase *cb, enum config_force_field f)
{
	return *cb->name ? xasprintf("%s_%s", cb->name, force_fields[f]) : xstrdup(force_fields[f]);
}

/* The default of field f of codebase cb: the map's values, the scheduler's project. */
static const char *force_cb_default(const struct config_scheduler *c,
				    const struct config_codebase *cb, enum config_force_field f)
{
	return f == CONFIG_FORCE_BRANCH       ? cb->branch
	       : f == CONFIG_FORCE_REVISION   ? cb->revision
	       : f == CONFIG_FORCE_REPOSITORY ? cb->repository
	       : f == CONFIG_FORCE_PROJECT    ? c->project
					      : NULL;
}

/* The sourcestamp fields of a force call: per codebase with a map, else the plain ones. */
static int force_check_sources(const struct config_scheduler *c, json_t *params, char **ret_err)
{
	int r;
	if (!c->ncodebases) {
		for (size_t f = 0; f < CONFIG_FORCE_NFIELDS; f++)
			if ((r = force_check_source(c, params, f, ret_err)) < 0)
				return r;
		return 0;
	}
	/* "codebase" itself names no codebase of the map: empty or unset only */
	if ((r = force_check_source(c, params, CONFIG_FORCE_CODEBASE, ret_err)) < 0)
		return r;
	for (size_t i = 0; i < c->ncodebases; i++)
		for (size_t f = 0; f < CONFIG_FORCE_CODEBASE; f++) {
			_cleanup_free_ char *name = force_cb_param(&c->codebases[i], f);
			r = force_check_field(c, params, f, name,
					      force_cb_default(c, &c->codebases[i], f), ret_err);
			if (r < 0)
				return r;
		}
	return 0;
}

/* key is a per-codebase sourcestamp field of c's map ("lib_branch"). */
static bool force_codebase_param(const struct config_scheduler *c, const char *key)
{
	for (size_t i = 0; i < c->ncodebases; i++) {
		const char *n = c->codebases[i].name;
		size_t len = strlen(n);
		if (!len || strncmp(key, n, len) || key[len] != '_')
			continue;
		for (size_t f = 0; f < CONFIG_FORCE_CODEBASE; f++)
			if (!strcmp(key + len + 1, force_fields[f]))
				return true;
	}
	return false;
}

/* Nesting of lists and objects in v: 0 for a scalar, more than max stops early. */
static int force_depth(json_t *v, int max)
{
	if (!json_is_array(v) && !json_is_object(v))
		return 0;
	if (max <= 0)
		return 1;
	int d = 0;
	size_t i;
	const char *k;
	json_t *e;
	if (json_is_array(v)) {
		json_array_foreach(v, i, e)
		{
			int x = force_depth(e, max - 1);
			d = x > d ? x : d;
			if (d >= max)
				break;
		}
	} else {
		json_object_foreach(v, k, e)
		{
			int x = force_depth(e, max - 1);
			d = x > d ? x : d;
			if (d >= max)
				break;
		}
	}
	return d + 1;
}

/* One property's name and value against the caps; *total adds its JSON size. */
static int force_check_prop(const char *name, json_t *v, size_t *total, char **ret_err)
{
	if (!*name || !sched_force_text_ok(name, KILN_FORCE_MAX_PROP_NAME)) {
		*ret_err = xasprintf("property name '%.64s' must be 1 to %u bytes without control "
				     "characters",
				     name, (unsigned)KILN_FORCE_MAX_PROP_NAME);
		return -EINVAL;
	}
	if (force_depth(v, KILN_FORCE_MAX_PROP_DEPTH) > KILN_FORCE_MAX_PROP_DEPTH) {
		*ret_err = xasprintf("property '%s' is nested deeper than %d levels", name,
				     KILN_FORCE_MAX_PROP_DEPTH);
		return -EINVAL;
	}
	size_t size = json_dumpb(v, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
	if (size > KILN_FORCE_MAX_PROP_VALUE) {
		*ret_err = xasprintf("property '%s' is larger than %u bytes", name,
				     (unsigned)KILN_FORCE_MAX_PROP_VALUE);
		return -EINVAL;
	}
	*total += size + strlen(name);
	if (*total > KILN_FORCE_MAX_PROPS_TOTAL) {
		*ret_err = xasprintf("the properties are larger than %u bytes in total",
				     (unsigned)KILN_FORCE_MAX_PROPS_TOTAL);
		return -EINVAL;
	}
	return 0;
}

static bool force_reserved_name(const char *key)
{
	for (size_t i = 0; i < ARRAY_SIZE(force_reserved); i++)
		if (!strcmp(force_reserved[i], key))
			return true;
	return false;
}

int sched_force_check(const struct config_scheduler *c, json_t *params, char **ret_err)
{
	const char *v;
	int r;
	if (params && !json_is_object(params)) {
		*ret_err = xstrdup("'params' must be an object");
		return -EINVAL;
	}
	if ((r = sched_param_string(params, "reason", KILN_FORCE_MAX_REASON, false, &v, ret_err)) <
	    0)
		return r;
	static const char *const owners[] = {"username", "owner"};
	for (size_t i = 0; i < ARRAY_SIZE(owners); i++) {
		r = sched_param_string(params, owners[i], KILN_FORCE_MAX_OWNER, false, &v, ret_err);
		if (r < 0)
			return r;
		if (v && !sched_force_text_ok(v, KILN_FORCE_MAX_OWNER)) {
			*ret_err = xasprintf("'%s' contains control characters", owners[i]);
			return -EINVAL;
		}
	}
	if ((r = force_check_sources(c, params, ret_err)) < 0)
		return r;
	if (!params)
		return 0;
	size_t total = 0, nprops = 0;
	const char *key;
	json_t *val;
	json_object_foreach(params, key, val)
	{
		if (force_reserved_name(key) || force_codebase_param(c, key))
			continue;
		bool declared = false;
		for (size_t i = 0; i < c->nparams && !declared; i++)
			declared = !strcmp(c->params[i].name, key);
		if (c->nparams && !declared)
			continue; /* not a property: ignored, as Buildbot does */
		if (++nprops > KILN_FORCE_MAX_PROPS) {
			*ret_err = xasprintf("more than %d properties", KILN_FORCE_MAX_PROPS);
			return -EINVAL;
		}
		if ((r = force_check_prop(key, val, &total, ret_err)) < 0)
			return r;
	}
	return 0;
}

/* One typed parameter's value from params (or its default) as JSON. */
static int force_param(const struct config_param *p, json_t *params, json_t **ret, char **ret_err)
{
	json_t *v = json_object_get(params, p->name);
	const char *label = p->label ? p->label : p->name;
	if (v && json_is_null(v))
		v = NULL;
	if (!v || (json_is_string(v) && !*json_string_value(v) && p->type != CONFIG_PARAM_STRING)) {
		if (p->required) {
			*ret_err = xasprintf("'%s' needs a value", label);
			return -EINVAL;
		}
		v = NULL;
	}
	switch (p->type) {
	case CONFIG_PARAM_STRING:
		if (v && !json_is_string(v)) {
			*ret_err = xasprintf("'%s' must be a string", label);
			return -EINVAL;
		}
		if (p->required && v && !*json_string_value(v)) {
			*ret_err = xasprintf("'%s' needs a value", label);
			return -EINVAL;
		}
		*ret = json_string(v ? json_string_value(v) : p->def);
		return 0;
	case CONFIG_PARAM_INT: {
		long long x;
		if (!v)
			str_to_i64(p->def, &x);
		else if (json_is_integer(v))
			x = json_integer_value(v);
		else if (!json_is_string(v) || str_to_i64(json_string_value(v), &x) < 0) {
			*ret_err = xasprintf("'%s' must be an integer", label);
			return -EINVAL;
		}
		if (x < p->min || x > p->max) {
			*ret_err = xasprintf("'%s' must be between %lld and %lld", label, p->min,
					     p->max);
			return -EINVAL;
		}
		*ret = json_integer(x);
		return 0;
	}
	case CONFIG_PARAM_BOOL: {
		bool b = !strcmp(p->def, "true");
		if (v && json_is_boolean(v))
			b = json_is_true(v);
		else if (v && json_is_string(v)) {
			const char *t = json_string_value(v);
			if (!strcmp(t, "true") || !strcmp(t, "on") || !strcmp(t, "1"))
				b = true;
			else if (!strcmp(t, "false") || !strcmp(t, "off") || !strcmp(t, "0"))
				b = false;
			else {
				*ret_err = xasprintf("'%s' must be true or false", label);
				return -EINVAL;
			}
		} else if (v && json_is_integer(v) &&
			   (json_integer_value(v) == 0 || json_integer_value(v) == 1))
			b = json_integer_value(v) != 0;
		else if (v) {
			*ret_err = xasprintf("'%s' must be true or false", label);
			return -EINVAL;
		}
		*ret = json_boolean(b);
		return 0;
	}
	case CONFIG_PARAM_CHOICE: {
		const char *t = v ? json_string_value(v) : p->def;
		for (size_t i = 0; t && i < p->nchoices; i++)
			if (!strcmp(p->choices[i], t)) {
				*ret = json_string(t);
				return 0;
			}
		*ret_err = xasprintf("'%s' must be one of the choices", label);
		return -EINVAL;
	}
	}
	return -EINVAL;
}

/* The sourcestamps of a checked force call (strings borrowed from params
 * and c): one per codebase of the map (Buildbot's CodebaseParameter
 * fields), or the plain fields' one.  Owned array. */
static struct db_sourcestamp *force_sourcestamps(const struct config_scheduler *c, json_t *params)
{
	struct db_sourcestamp *ss = xcalloc(c->ncodebases + 1, sizeof(*ss));
	if (!c->ncodebases) {
		ss[0] = (struct db_sourcestamp){
			.branch = force_source(params, "branch", c->branch),
			.revision = force_source(params, "revision", NULL), /* none: the newest */
			.repository = force_source(params, "repository", c->repository),
			.project = force_source(params, "project", c->project),
			.codebase = force_source(params, "codebase", c->codebase),
		};
		return ss;
	}
	for (size_t i = 0; i < c->ncodebases; i++) {
		const struct config_codebase *cb = &c->codebases[i];
		const char *v[CONFIG_FORCE_CODEBASE];
		for (size_t f = 0; f < CONFIG_FORCE_CODEBASE; f++) {
			_cleanup_free_ char *name = force_cb_param(cb, f);
			v[f] = force_source(params, name, force_cb_default(c, cb, f));
		}
		ss[i] = (struct db_sourcestamp){
			.branch = v[CONFIG_FORCE_BRANCH],
			.revision = v[CONFIG_FORCE_REVISION],
			.repository = v[CONFIG_FORCE_REPOSITORY],
			.project = v[CONFIG_FORCE_PROJECT],
			.codebase = cb->name,
		};
	}
	return ss;
}

int sched_force(struct sched *s, const char *name, json_t *params, const int64_t *builderids,
		size_t n, int64_t *ret_bsid, int64_t *ret_brids, char **ret_err)
{
	struct sched_one *o = sched_find(s, name);
	if (!o || o->cfg->kind != CONFIG_SCHED_FORCE)
		return KILN_ENOTFOUND;
	if (o->disabled) {
		*ret_err = xasprintf("the scheduler %s is disabled", name);
		return -EINVAL; /* a 400 with this message, like a refused value */
	}
	const struct config_scheduler *c = o->cfg;
	if (json_is_null(params))
		params = NULL;
	int r = sched_force_check(c, params, ret_err);
	if (r < 0)
		return r;
	const char *reason = force_str(params, "reason", "force build");
	const char *user = force_str(params, "username", "");
	_cleanup_free_ char *text = NULL;
	_cleanup_free_ struct db_sourcestamp *ss = NULL;
	json_t *props = json_object();
	json_object_set_new(props, "owner", json_pack("[s,s]", user, "Force Build Form"));
	json_object_set_new(props, "reason", json_pack("[s,s]", reason, "Force Build Form"));
	for (size_t i = 0; i < c->nparams; i++) {
		json_t *v;
		r = force_param(&c->params[i], params, &v, ret_err);
		if (r < 0)
			goto out;
		json_object_set_new(props, c->params[i].name,
				    json_pack("[o,s]", v, "Force Build Form"));
	}
	if (c->nparams == 0 && params) {
		/* no declared parameters: every other field becomes a property */
		const char *key;
		json_t *val;
		json_object_foreach(params, key, val)
		{
			if (!force_reserved_name(key) && !force_codebase_param(c, key))
				json_object_set_new(props, key,
						    json_pack("[O,s]", val, "Force Build Form"));
		}
	}
	int priority = c->priority;
	json_t *pr = params ? json_object_get(params, "priority") : NULL;
	if (pr && !json_is_null(pr)) {
		long long x;
		if (json_is_integer(pr))
			x = json_integer_value(pr);
		else if (!json_is_string(pr) || str_to_i64(json_string_value(pr), &x) < 0)
			x = LLONG_MAX;
		if (x < -1000000 || x > 1000000) {
			*ret_err = xstrdup(
				"'priority' must be an integer between -1000000 and 1000000");
			r = -EINVAL;
			goto out;
		}
		priority = (int)x;
	}
	ss = force_sourcestamps(c, params);
	text = xasprintf("A build was forced by '%s': %s", user, reason);
	r = sched_add_buildset_on(o, builderids, n, text, ss, c->ncodebases ? c->ncodebases : 1,
				  NULL, 0, props, 0, priority, ret_bsid, ret_brids);
out:
	json_decref(props);
	return r;
}
