/*
 * Schedulers (placeholder: the scheduler module replaces this file).
 */
#include "common/xalloc.h"
#include "master/sched/sched.h"

struct sched {
	struct master *m;
};

int sched_new(struct master *m, struct sched **ret)
{
	struct sched *s = xcalloc(1, sizeof(*s));
	s->m = m;
	*ret = s;
	return 0;
}

void sched_free(struct sched *s)
{
	free(s);
}

void sched_change_added(struct sched *s, const struct change *c)
{
	(void)s;
	(void)c;
}

void sched_buildset_completed(struct sched *s, int64_t bsid, int results)
{
	(void)s;
	(void)bsid;
	(void)results;
}
