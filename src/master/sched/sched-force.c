/*
 * force schedulers: Buildbot's force parameters (reason, username, the
 * sourcestamp overrides, priority) plus the scheduler's typed params
 * (string, int, bool, choice) checked against their declaration and
 * turned into build properties.  Called by the JSON-RPC force call.
 */
#define LOG_SUBSYS "sched"

#include <errno.h>
#include <string.h>

#include "common/err.h"
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
		} else if (v && json_is_integer(v))
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

int sched_force(struct sched *s, const char *name, json_t *params, const int64_t *builderids,
		size_t n, int64_t *ret_bsid, int64_t *ret_brids, char **ret_err)
{
	struct sched_one *o = sched_find(s, name);
	if (!o || o->cfg->kind != CONFIG_SCHED_FORCE)
		return KILN_ENOTFOUND;
	const struct config_scheduler *c = o->cfg;
	if (!json_is_object(params))
		params = NULL;
	const char *reason = force_str(params, "reason", "force build");
	const char *user = force_str(params, "username", "");
	_cleanup_free_ char *text = NULL;
	json_t *props = json_object();
	json_object_set_new(props, "owner", json_pack("[s,s]", user, "Force Build Form"));
	json_object_set_new(props, "reason", json_pack("[s,s]", reason, "Force Build Form"));
	int r = 0;
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
			bool reserved = false;
			for (size_t i = 0; i < ARRAY_SIZE(force_reserved) && !reserved; i++)
				reserved = !strcmp(force_reserved[i], key);
			if (!reserved)
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
		else if (!json_is_string(pr) || str_to_i64(json_string_value(pr), &x) < 0 ||
			 x < -1000000 || x > 1000000) {
			*ret_err = xstrdup("'priority' must be an integer");
			r = -EINVAL;
			goto out;
		}
		priority = (int)x;
	}
	struct db_sourcestamp ss = {
		.branch = force_source(params, "branch", c->branch),
		.revision = force_source(params, "revision", NULL), /* no default: the newest */
		.repository = force_source(params, "repository", c->repository),
		.project = force_source(params, "project", c->project),
		.codebase = force_source(params, "codebase", c->codebase),
	};
	text = xasprintf("A build was forced by '%s': %s", user, reason);
	r = sched_add_buildset_on(o, builderids, n, text, &ss, NULL, 0, props, 0, priority,
				  ret_bsid, ret_brids);
out:
	json_decref(props);
	return r;
}
