/*
 * libFuzzer target for the configuration loader (src/config): any bytes
 * as master.lua.  Loading must end in a config or one error line, never a
 * crash, a leak or an abort; a loaded config must be self-consistent.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int once;
	if (!once) {
		/* so inputs derived from the sample get past secret() */
		setenv("KILN_SECRET_WORKER1", "fuzz-password", 1);
		setenv("KILN_SECRET_W1", "fuzz-w1", 1);
		once = 1;
	}
	struct config *cfg = NULL;
	char *err = NULL;
	int r = config_load_string("master.lua", (const char *)data, size, NULL, &cfg, &err);
	if (r < 0) {
		if (!err || strncmp(err, "master.lua", 10) || strchr(err, '\n'))
			abort(); /* one line naming the file, always */
		free(err);
		return 0;
	}
	if (err)
		abort();
	/* every reference resolves, every step has what the master needs */
	for (size_t i = 0; i < cfg->nbuilders; i++) {
		const struct config_builder *b = &cfg->builder[i];
		if (!b->name || !b->builddir || b->nsteps == 0 || b->nworkers == 0)
			abort();
		for (size_t k = 0; k < b->nworkers; k++)
			if (!config_find_worker(cfg, b->workers[k]))
				abort();
		for (size_t k = 0; k < b->nsteps; k++) {
			const struct config_step *st = &b->steps[k];
			if (!st->name)
				abort();
			if (st->kind == CONFIG_STEP_SHELL &&
			    (!st->workdir || !st->argv == !(st->command.text || st->command.fn)))
				abort();
			if (st->kind == CONFIG_STEP_PATCH && !st->workdir)
				abort();
			if (st->kind == CONFIG_STEP_TRIGGER && st->ntrigger_schedulers == 0)
				abort();
		}
	}
	for (size_t i = 0; i < cfg->nschedulers; i++) {
		const struct config_scheduler *sc = &cfg->scheduler[i];
		for (size_t k = 0; k < sc->nbuilders; k++)
			if (!config_find_builder(cfg, sc->builders[k]))
				abort();
		if (sc->upstream && !config_find_scheduler(cfg, sc->upstream))
			abort();
		if (sc->kind == CONFIG_SCHED_NIGHTLY && !sc->cron)
			abort();
		if (sc->kind == CONFIG_SCHED_TRY && !sc->token)
			abort();
	}
	for (size_t i = 0; i < cfg->nworkers; i++)
		if (!cfg->worker[i].password || cfg->worker[i].max_builds < 1)
			abort();
	config_free(cfg);
	return 0;
}
