/*
 * A property bag: Buildbot's build properties, each a JSON value with the
 * name of its source ("Builder", "Worker", "Force Build Form", a step's
 * name...), over jansson.  Pure: no loop, no database.  Setting a name
 * again replaces its value and source (a later layer wins, as in
 * Buildbot's Properties.update).
 */
#ifndef KILN_MASTER_PROPS_H
#define KILN_MASTER_PROPS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct props;

/* An empty bag. */
struct props *props_new(void);
/* NULL-safe. */
void props_free(struct props *p);

/*
 * Sets name to value from source.  Takes the reference to value (as
 * json_object_set_new), on failure too; value NULL is refused (jansson's
 * constructors return NULL on bad input).  Errors: -EINVAL (value NULL,
 * name empty, name or source not UTF-8), KILN_ETOOBIG (name or source over
 * KILN_PROPS_MAX_NAME bytes, value over KILN_PROPS_MAX_VALUE bytes as
 * compact JSON, or a new name past KILN_PROPS_MAX properties).
 */
int props_set(struct props *p, const char *name, json_t *value, const char *source);
/* The value of name (borrowed: valid until name is set again or p is
 * freed), NULL if unset; *ret_source (borrowed too) if ret_source non-NULL. */
json_t *props_get(const struct props *p, const char *name, const char **ret_source);
/* Whether name is set. */
bool props_has(const struct props *p, const char *name);
/* Number of properties. */
size_t props_count(const struct props *p);

/* Calls fn for each property in the order they were first set; stops at
 * and returns fn's first negative result, else 0.  fn must not change p. */
typedef int (*props_each_fn)(void *ud, const char *name, json_t *value, const char *source);
int props_foreach(const struct props *p, props_each_fn fn, void *ud);

/* Sets every property of src in dst (src's sources kept): a layer over
 * another.  Stops at the first error (see props_set). */
int props_update(struct props *dst, const struct props *src);

/* Buildbot's API shape, {"name": [value, "source"], ...}: a new
 * reference, a deep copy (changing it leaves p as it was). */
json_t *props_to_api_json(const struct props *p);

#endif
