/*
 * set_property_from_command { }: a command on the worker whose output
 * becomes properties, as Buildbot's SetPropertyFromCommand: its stdout
 * stripped (property = ...), the named groups of a regex's first match on
 * stdout (extract = ..., master/warnscan.h), or what a Lua function of
 * (rc, stdout, stderr) returns (extract_fn = ...).  Output is kept up to
 * KILN_PROPCMD_MAX_OUTPUT; past it the step ends EXCEPTION rather than set
 * a truncated value.  Properties come from "SetPropertyFromCommand Step".
 */
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "db/db.h"
#include "master/engine-int.h"
#include "master/master.h"
#include "master/steps/step.h"
#include "master/warnscan.h"
#include "proto/msg.h"

#define STEP_PROPCMD_SOURCE "SetPropertyFromCommand Step"

struct step_propcmd {
	struct buf out, err;
	bool over;          /* a stream passed the cap */
	struct buf changes; /* the "property changes" log */
	int nset;
};

static void step_propcmd_update(struct step *st, const char *key, const msgpack_object *value)
{
	struct step_propcmd *c = st->priv;
	struct buf *b = !strcmp(key, "stdout") ? &c->out : !strcmp(key, "stderr") ? &c->err : NULL;
	if (!b)
		return;
	const msgpack_object *t = value;
	if (value->type == MSGPACK_OBJECT_ARRAY && value->via.array.size >= 1)
		t = &value->via.array.ptr[0];
	struct str s;
	if (proto_obj_str(t, &s) && buf_add(b, s.p, s.len) < 0)
		c->over = true;
}

/* Sets one property and notes it in the "property changes" log. */
static void step_propcmd_set(struct step *st, const char *name, json_t *v)
{
	struct step_propcmd *c = st->priv;
	_cleanup_free_ char *text = step_json_text(v);
	if (buf_addf(&c->changes, "%s: %s\n", name, text) < 0)
		buf_reset(&c->changes); /* the log is a courtesy; the property is set */
	step_set_property(st, name, v, STEP_PROPCMD_SOURCE);
	c->nset++;
}

static void step_propcmd_group(void *ud, const char *name, const char *value, size_t len)
{
	struct step *st = ud;
	if (!name)
		name = st->cfg->property;
	json_t *v = json_stringn(value, len);
	if (!v) {
		step_log_header(st, "extract: the value of '%s' is not UTF-8: not set", name);
		return;
	}
	step_propcmd_set(st, name, v);
}

/* The properties; the step's results (decided by the exit code first). */
static int step_propcmd_extract(struct step *st, int results)
{
	struct step_propcmd *c = st->priv;
	const struct config_step *s = st->cfg;
	if (s->extract_fn) {
		/* as Buildbot: the function sees every exit code */
		struct build *b = st->b;
		json_t *args = json_array(), *r = NULL;
		json_array_append_new(args, json_integer(st->rc));
		json_array_append_new(args, json_stringn(c->out.ptr, c->out.len));
		json_array_append_new(args, json_stringn(c->err.ptr, c->err.len));
		char *err = NULL;
		int rc = json_array_size(args) == 3
				 ? config_call_fn(b->cfg, s->extract_fn, args, NULL, &r, &err)
				 : KILN_EPARSE;
		json_decref(args);
		if (rc < 0) {
			step_log_header(st, "extract_fn: %s",
					err                 ? err
					: rc == KILN_EPARSE ? "the output is not UTF-8"
							    : err_str(rc));
			free(err);
			return RESULTS_EXCEPTION;
		}
		if (!json_is_object(r)) {
			step_log_header(st,
					"extract_fn: returned a %s, not a table of name = value",
					json_is_array(r) ? "list" : "scalar");
			json_decref(r);
			return RESULTS_EXCEPTION;
		}
		const char *k;
		json_t *v;
		json_object_foreach(r, k, v)
		{
			if (!*k || strlen(k) > KILN_MAX_NAME) {
				step_log_header(st,
						"extract_fn: a property name is empty or too long");
				json_decref(r);
				return RESULTS_EXCEPTION;
			}
		}
		json_object_foreach(r, k, v) step_propcmd_set(st, k, json_incref(v));
		json_decref(r);
		return results;
	}
	if (results != RESULTS_SUCCESS && results != RESULTS_WARNINGS)
		return results; /* as Buildbot: a failed command sets nothing */
	if (s->extract) {
		char *err = NULL;
		int n = warnscan_extract(s->extract, c->out.ptr, c->out.len, step_propcmd_group, st,
					 &err);
		if (n < 0) {
			step_log_header(st, "extract: %s", err ? err : err_str(n));
			free(err);
			return RESULTS_EXCEPTION;
		}
		if (n == 0)
			step_log_header(st, "extract: no match in the output: nothing set");
		return results;
	}
	/* property = ...: stdout without surrounding white space */
	const char *p = c->out.ptr, *e = c->out.ptr + c->out.len;
	while (p < e && strchr(" \t\r\n\v\f", *p))
		p++;
	while (e > p && strchr(" \t\r\n\v\f", e[-1]))
		e--;
	json_t *v = json_stringn(p, (size_t)(e - p));
	if (!v) {
		step_log_header(st, "the output is not UTF-8: '%s' not set", s->property);
		return RESULTS_EXCEPTION;
	}
	step_propcmd_set(st, s->property, v);
	return results;
}

static void step_propcmd_done(struct step *st, int status, const char *failure)
{
	struct step_propcmd *c = st->priv;
	int results = step_command_results(st, status, failure);
	if (results >= 0) {
		step_finish(st, results);
		return;
	}
	results = step_rc_results(st);
	if (c->over) {
		step_log_header(st, "the output is over %u bytes: no property set",
				(unsigned)KILN_PROPCMD_MAX_OUTPUT);
		step_finish(st, RESULTS_EXCEPTION);
		return;
	}
	results = step_propcmd_extract(st, results);
	if (c->changes.len) {
		int64_t logid;
		if (step_add_log(st, "property changes", 't', &logid) >= 0 &&
		    step_log_text(st, logid, c->changes.ptr, c->changes.len) >= 0)
			step_log_close(st, logid);
	}
	step_finish(st, results);
}

static const struct step_cmd_ops step_propcmd_ops = {step_propcmd_update, step_propcmd_done};

static void step_propcmd_start(struct step *st)
{
	struct step_propcmd *c = xcalloc(1, sizeof(*c));
	buf_init(&c->out, KILN_PROPCMD_MAX_OUTPUT);
	buf_init(&c->err, KILN_PROPCMD_MAX_OUTPUT);
	buf_init(&c->changes, KILN_PROPCMD_MAX_OUTPUT);
	st->priv = c;
	step_shell_run(st, &step_propcmd_ops);
}

static void step_propcmd_free(struct step *st)
{
	struct step_propcmd *c = st->priv;
	if (!c)
		return;
	buf_release(&c->out);
	buf_release(&c->err);
	buf_release(&c->changes);
	free(c);
	st->priv = NULL;
}

const struct step_kind step_kind_propcmd = {
	.kind = CONFIG_STEP_PROPCMD,
	.name = "set_property_from_command",
	.describe = step_shell_describe,
	.start = step_propcmd_start,
	.free = step_propcmd_free,
};
