/*
 * The change record and its one entry point.  Every change source
 * (sendchange through the API, /change_hook/{base,github,gitlab,gitea},
 * the git/hg/svn pollers) fills a struct change and calls change_add(),
 * which stores it, matches its author to a user, and hands it to the
 * schedulers.
 */
#ifndef KILN_CHANGE_H
#define KILN_CHANGE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct master;

struct change {
	char *author;    /* "who": "Full Name <email>" or a bare username */
	char *committer; /* may be NULL */
	char *comments;
	char **files;               /* paths relative to the repository root */
	size_t nfiles, files_alloc; /* files_alloc: change_add_file's ARRAY_GROW capacity */
	char *project, *repository, *codebase, *revision, *branch, *category, *revlink;
	json_t *properties; /* {"name": [value, "Change"]} or NULL */
	double when;        /* when_timestamp (seconds); 0 = now */
	const char *src;    /* "git", "hg", "svn", "github", ... (borrowed; may be NULL) */
	/* filled by change_add() */
	int64_t changeid;
	int64_t sourcestampid;
};

/* Stores c (all fields borrowed; copied), records the users it names, sets
 * c->changeid and c->sourcestampid, and notifies the schedulers
 * (sched_change_added).  Runs on the loop; the database write is part of
 * the current batch, so a change is acknowledged once its batch commits:
 * callers that answer an HTTP request do so after db_flush(). */
int change_add(struct master *m, struct change *c);

/* change_add() on v[0..n) in order, stopping at the first error;
 * *ret_stored = how many were stored.  The schedulers take them as one
 * burst (sched_changes_begin/end): each writes its state once, so a push
 * of n changes costs O(n). */
int change_add_list(struct master *m, struct change *v, size_t n, size_t *ret_stored);

/* Frees the contents of a change filled by a parser (all owned strings,
 * files, properties).  NULL-safe. */
void change_release(struct change *c);
/* change_release() on each of v[0..n), then frees v.  NULL-safe. */
void change_list_free(struct change *v, size_t n);

/* Helpers for parsers: append a copy of path[0..len) to files; set
 * properties[name] = [value, "Change"] (steals value). */
void change_add_file(struct change *c, const char *path, size_t len);
void change_set_property(struct change *c, const char *name, json_t *value);

#endif
