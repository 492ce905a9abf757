/*
 * try schedulers: `kiln try` uploads a patch, its base revision and branch;
 * after the token check (constant time) the patch is stored with the
 * buildset's sourcestamp and the builds apply it in their apply_patch step.
 */
#define LOG_SUBSYS "sched"

#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "db/db.h"
#include "master/master.h"
#include "master/sched/sched-int.h"

static bool try_token_ok(const char *want, const char *got)
{
	if (!want || !got)
		return false;
	size_t wl = strlen(want), gl = strlen(got);
	/* compare equal lengths only; the length itself is not secret enough to matter */
	return wl == gl && sodium_memcmp(want, got, wl) == 0;
}

int sched_try_check(json_t *params, char **ret_err)
{
	static const struct {
		const char *name;
		size_t max;
		bool text;
	} strings[] = {
		{"token", KILN_FORCE_MAX_TOKEN, false},
		{"branch", KILN_FORCE_MAX_REF, true},
		{"revision", KILN_FORCE_MAX_REF, true},
		{"repository", KILN_FORCE_MAX_SOURCE, true},
		{"project", KILN_FORCE_MAX_SOURCE, true},
		{"codebase", KILN_FORCE_MAX_SOURCE, true},
		{"patch_subdir", KILN_FORCE_MAX_SOURCE, true},
		{"who", KILN_FORCE_MAX_OWNER, true},
		{"comment", KILN_FORCE_MAX_REASON, false},
		{"patch_base64", KILN_MAX_HTTP_BODY, false},
	};
	if (!json_is_object(params)) {
		*ret_err = xstrdup("'params' must be an object");
		return -EINVAL;
	}
	for (size_t i = 0; i < ARRAY_SIZE(strings); i++) {
		const char *v;
		int r = sched_param_string(params, strings[i].name, strings[i].max, strings[i].text,
					   &v, ret_err);
		if (r < 0)
			return r;
	}
	static const char *const refs[] = {"branch", "revision"};
	for (size_t i = 0; i < ARRAY_SIZE(refs); i++) {
		const char *v = json_string_value(json_object_get(params, refs[i]));
		if (v && *v && !sched_force_ref_ok(v)) {
			*ret_err = xasprintf(
				"'%s' must look like a ref name or revision (letters, digits, "
				"._/+-@~^:,= not starting with '-', at most %u bytes)",
				refs[i], (unsigned)KILN_FORCE_MAX_REF);
			return -EINVAL;
		}
	}
	json_t *level = json_object_get(params, "patch_level");
	if (level && !json_is_null(level) &&
	    (!json_is_integer(level) || json_integer_value(level) < 0 ||
	     json_integer_value(level) > 100)) {
		*ret_err = xstrdup("'patch_level' must be an integer between 0 and 100");
		return -EINVAL;
	}
	json_t *names = json_object_get(params, "builderNames");
	if (names && !json_is_null(names)) {
		bool ok = json_is_array(names) &&
			  json_array_size(names) <= KILN_FORCE_MAX_BUILDER_NAMES;
		size_t i;
		json_t *n;
		json_array_foreach(names, i, n)
		{
			ok = ok && json_is_string(n) && json_string_length(n) <= KILN_MAX_NAME;
		}
		if (!ok) {
			*ret_err = xasprintf("'builderNames' must be a list of at most %u builder "
					     "names",
					     (unsigned)KILN_FORCE_MAX_BUILDER_NAMES);
			return -EINVAL;
		}
	}
	return 0;
}

int sched_try(struct sched *s, const struct sched_try_job *job, int64_t *ret_bsid, char **ret_err)
{
	struct sched_one *o = NULL;
	for (size_t i = 0; i < s->n; i++) {
		struct sched_one *x = &s->all[i];
		if (x->cfg->kind != CONFIG_SCHED_TRY)
			continue;
		if (job->scheduler ? !strcmp(job->scheduler, x->cfg->name) : !o)
			o = x;
	}
	if (!o)
		return KILN_ENOTFOUND;
	if (!try_token_ok(o->cfg->token, job->token))
		return KILN_EAUTH;
	if (!job->patch || job->patch_len > KILN_MAX_PATCH_BYTES) {
		*ret_err = xasprintf("the patch is missing or larger than %u bytes",
				     (unsigned)KILN_MAX_PATCH_BYTES);
		return -EINVAL;
	}
	if (job->patch_level < 0 || job->patch_level > 100) {
		*ret_err = xstrdup("'patch_level' must be between 0 and 100");
		return -EINVAL;
	}
	if (job->patch_subdir && (job->patch_subdir[0] == '/' || strstr(job->patch_subdir, ".."))) {
		*ret_err = xstrdup("'patch_subdir' must be a relative path without '..'");
		return -EINVAL;
	}
	int64_t *ids = xcalloc(o->nbuilders + 1, sizeof(*ids));
	size_t n = 0;
	if (job->builders) {
		for (size_t i = 0; i < job->nbuilders; i++) {
			size_t k;
			for (k = 0; k < o->cfg->nbuilders; k++)
				if (!strcmp(o->cfg->builders[k], job->builders[i]))
					break;
			if (k == o->cfg->nbuilders) {
				*ret_err =
					xasprintf("builder '%.200s' is not in try scheduler '%s'",
						  job->builders[i], o->cfg->name);
				free(ids);
				return -EINVAL;
			}
			bool dup = false;
			for (size_t j = 0; j < n; j++)
				dup |= ids[j] == o->builderids[k];
			if (!dup && k < o->nbuilders)
				ids[n++] = o->builderids[k];
		}
	} else {
		for (size_t k = 0; k < o->nbuilders; k++)
			ids[n++] = o->builderids[k];
	}
	if (n == 0) {
		free(ids);
		*ret_err = xstrdup("no builders to try on");
		return -EINVAL;
	}
	struct db_sourcestamp ss = {
		.branch = job->branch,
		.revision = job->revision,
		.repository = job->repository,
		.project = job->project,
		.codebase = job->codebase,
	};
	json_t *props = json_object();
	if (job->who)
		json_object_set_new(props, "owner", json_pack("[s,s]", job->who, "Try"));
	_cleanup_free_ char *reason =
		xasprintf("'try' job by '%s'%s%s", job->who ? job->who : "",
			  job->comment ? ": " : "", job->comment ? job->comment : "");
	int64_t bsid;
	int r = sched_add_buildset_on(o, ids, n, reason, &ss, 1, NULL, 0, props, 0,
				      o->cfg->priority, &bsid, NULL);
	json_decref(props);
	free(ids);
	if (r < 0)
		return r;
	struct db_patch p = {
		.level = job->patch_level,
		.body = job->patch,
		.len = job->patch_len,
		.subdir = job->patch_subdir,
		.author = job->who,
		.comment = job->comment,
		.codebase = job->codebase,
	};
	r = db_buildset_set_patch(s->m->db, bsid, &p);
	if (r < 0) {
		log_error("try: cannot store the patch of buildset %lld: %s", (long long)bsid,
			  db_errmsg(s->m->db));
		return r;
	}
	*ret_bsid = bsid;
	return 0;
}
