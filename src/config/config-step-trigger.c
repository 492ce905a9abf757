/*
 * trigger { schedulers = {...}, wait_for_finish, set_properties }: a step
 * that starts buildsets on triggerable schedulers (steps/step-trigger.c
 * runs it).  The names are checked against the schedulers in
 * config_sched_finish().
 */
#include "config/config-internal.h"
#include "common/xalloc.h"

#include <lauxlib.h>
#include <string.h>

int config_step_trigger(lua_State *L)
{
	static const char *const keys[] = {"name",           "schedulers",       "wait_for_finish",
					   "set_properties", DSL_STEP_FLAG_KEYS, NULL};
	int line = config_line(L);
	char what[256];
	dsl_check_table_arg(L, "trigger");
	dsl_what(L, what, sizeof(what), "trigger", NULL);
	dsl_check_keys(L, 1, what, keys);
	const char *name = dsl_opt_name(L, 1, what, "name");
	if (dsl_get(L, 1, "schedulers") == LUA_TNIL)
		return config_raise(L, "%s: 'schedulers' is required: schedulers = { \"t\" }",
				    what);
	int sl = lua_gettop(L);
	size_t n = dsl_check_name_list(L, sl, what, "schedulers");
	if (n == 0)
		return config_raise(L, "%s: 'schedulers' must name at least one scheduler", what);
	bool wait = dsl_opt_bool(L, 1, what, "wait_for_finish", false);
	struct config_step flags = dsl_step_flags(L, what);

	struct config_step *step = lua_newuserdatauv(L, sizeof(*step), 1 /* fp (config-fp.c) */);
	*step = flags;
	step->kind = CONFIG_STEP_TRIGGER;
	step->wait_for_finish = wait;
	step->line = line;
	luaL_setmetatable(L, MT_STEP);
	int ud = lua_gettop(L);
	step->trigger_schedulers = dsl_new_strv(L, n);
	dsl_fill_list(L, sl, step->trigger_schedulers, &step->ntrigger_schedulers, n);
	config_sched_props(L, 1, what, "set_properties", &step->set_properties,
			   &step->nset_properties);
	step->name = config_strdup(L, name ? name : "trigger", strlen(name ? name : "trigger"));
	lua_settop(L, ud);
	return 1;
}

void config_step_trigger_copy(lua_State *L, struct config_step *dst, const struct config_step *src)
{
	dst->trigger_schedulers = NULL;
	dst->ntrigger_schedulers = 0;
	dst->set_properties = NULL;
	dst->nset_properties = 0;
	if (src->trigger_schedulers) {
		dst->trigger_schedulers = dsl_new_strv(L, src->ntrigger_schedulers);
		for (size_t i = 0; i < src->ntrigger_schedulers; i++) {
			dst->trigger_schedulers[i] = config_strdup(
				L, src->trigger_schedulers[i], strlen(src->trigger_schedulers[i]));
			dst->ntrigger_schedulers = i + 1;
		}
	}
	if (src->nset_properties) {
		config_charge(L, src->nset_properties * sizeof(struct config_prop));
		dst->set_properties = xcalloc(src->nset_properties, sizeof(struct config_prop));
		for (size_t i = 0; i < src->nset_properties; i++) {
			struct config_prop *p = &dst->set_properties[i];
			p->name = config_strdup(L, src->set_properties[i].name,
						strlen(src->set_properties[i].name));
			dst->nset_properties = i + 1;
			p->value = config_strdup(L, src->set_properties[i].value,
						 strlen(src->set_properties[i].value));
		}
	}
}

void config_step_trigger_release(struct config_step *s)
{
	config_sched_strv_free(s->trigger_schedulers, s->ntrigger_schedulers);
	config_prop_free(s->set_properties, s->nset_properties);
	s->trigger_schedulers = NULL;
	s->set_properties = NULL;
}
