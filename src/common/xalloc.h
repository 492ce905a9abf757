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

/* a * b, aborting (like an allocation failure) if it overflows size_t. */
size_t xmul(size_t a, size_t b);
/* xrealloc(p, nmemb * size) with the multiplication checked. */
void *xreallocarray(void *p, size_t nmemb, size_t size);

/*
 * The one way an array grows (git ALLOC_GROW): makes room for at least 'need'
 * elements in 'p', whose allocated count is 'alloc', growing by half again
 * (amortised O(1) appends, never one at a time) with overflow-checked sizes.
 *
 *   ARRAY_GROW(v, n + 1, cap);
 *   v[n++] = x;
 */
#define ARRAY_GROW(p, need, alloc)                                                                 \
	do {                                                                                       \
		size_t array_grow_need_ = (need);                                                  \
		if (array_grow_need_ > (alloc)) {                                                  \
			size_t array_grow_n_ = array_grow_grown(alloc);                            \
			if (array_grow_n_ < array_grow_need_)                                      \
				array_grow_n_ = array_grow_need_;                                  \
			(p) = xreallocarray((p), array_grow_n_, sizeof(*(p)));                     \
			(alloc) = array_grow_n_;                                                   \
		}                                                                                  \
	} while (0)
/* alloc * 3 / 2 + 16, saturating (ARRAY_GROW's growth rule). */
size_t array_grow_grown(size_t alloc);

#endif
