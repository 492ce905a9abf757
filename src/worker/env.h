/*
 * Environment for commands run by kiln-worker: a "NAME=value" vector built
 * from the worker's own environment plus a step's `env` map, with Buildbot's
 * rules (PROTOCOL.md §3.7): ${VAR} expands from the worker's environment
 * (unknown = empty), array values are joined with ':', nil removes.
 */
#ifndef KILN_WORKER_ENV_H
#define KILN_WORKER_ENV_H

#include <msgpack.h>
#include <stddef.h>

struct env {
	char **v; /* owned, NULL-terminated, each "NAME=value" owned */
	size_t n, cap;
};

/* Copies base (a NULL-terminated "NAME=value" vector such as environ; NULL = empty). */
void env_init(struct env *e, char *const *base);
void env_release(struct env *e);
/* Value of name, or NULL.  Borrowed. */
const char *env_get(const struct env *e, const char *name);
void env_set(struct env *e, const char *name, const char *value);
void env_unset(struct env *e, const char *name);
/* Sorts by name (for logEnviron headers). */
void env_sort(struct env *e);

/* Expands ${VAR} in s[0..n) from lookup (unknown or NULL lookup: empty).  Returns a new
 * string, or NULL if the result would be over 1 MiB. */
char *env_expand(const char *s, size_t n, const struct env *lookup);
/*
 * Applies a step's env map to e: str values expanded against lookup, arrays
 * of str joined with ':' then expanded, nil (or any other type) removes the
 * variable.  PYTHONPATH gets ":${PYTHONPATH}" appended as Buildbot does.
 * Returns 0, -EINVAL if map is not a map or a key is not a str, or -E2BIG if
 * a value is over 1 MiB (e is then partly changed: discard it).
 */
int env_apply(struct env *e, const msgpack_object *map, const struct env *lookup);

#endif
