/*
 * set_property { } and set_properties { }: build properties set on the
 * master, constants or renderables rendered now; their source is the
 * step's name, as Buildbot's SetProperty and SetProperties.
 */
#include <jansson.h>
#include <string.h>

#include "common/xalloc.h"
#include "db/db.h"
#include "master/steps/step.h"

static char *step_setprop_describe(const struct step *st)
{
	return xstrdup(st->cfg->nprops == 1 && st->cfg->props ? "Setting" : "Setting Properties..");
}

static void step_setprop_start(struct step *st)
{
	const struct config_step *s = st->cfg;
	/* every value is rendered before any is set: a failure sets none */
	json_t **v = xcalloc(s->nprops ? s->nprops : 1, sizeof(*v));
	int results = RESULTS_SUCCESS;
	for (size_t i = 0; i < s->nprops; i++) {
		const struct config_step_prop *p = &s->props[i];
		if (p->json) {
			v[i] = json_loads(p->json, JSON_DECODE_ANY, NULL);
		} else {
			_cleanup_free_ char *what = xasprintf("property %s", p->name);
			if (step_render_json(st, &p->value, what, &v[i]) < 0)
				v[i] = NULL;
		}
		if (!v[i]) {
			results = RESULTS_EXCEPTION;
			break;
		}
	}
	for (size_t i = 0; i < s->nprops; i++) {
		if (results == RESULTS_SUCCESS)
			step_set_property(st, s->props[i].name, v[i], s->name);
		else
			json_decref(v[i]);
	}
	free(v);
	if (results == RESULTS_SUCCESS)
		step_set_description(st, s->nprops == 1 ? "Set" : "Properties Set");
	step_finish(st, results);
}

const struct step_kind step_kind_setprop = {
	.kind = CONFIG_STEP_SETPROP,
	.name = "set_property",
	.describe = step_setprop_describe,
	.start = step_setprop_start,
};
