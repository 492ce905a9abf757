/*
 * Allocation wrappers that abort on out-of-memory, so no caller carries an
 * OOM branch (git, tmux).  Everything else in Kiln allocates through these.
 */
#ifndef KILN_XALLOC_H
#define KILN_XALLOC_H

#include <stddef.h>
#include <stdlib.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
/* NULL-safe: returns NULL for NULL. */
char *xstrdup_or_null(const char *s);
char *xstrndup(const char *s, size_t n);
void *xmemdup(const void *p, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Takes a pointer out of a cleanup-managed variable (systemd TAKE_PTR). */
#define TAKE_PTR(p)                                                                                \
	({                                                                                         \
		__typeof__(p) take_ptr_tmp_ = (p);                                                 \
		(p) = NULL;                                                                        \
		take_ptr_tmp_;                                                                     \
	})

static inline void freep(void *p)
{
	free(*(void **)p);
}
#define _cleanup_free_ __attribute__((cleanup(freep)))

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
