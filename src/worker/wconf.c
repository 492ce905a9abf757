/*
 * DIR/worker.conf reading and writing (wconf.h).  The format is deliberately
 * tiny: one "key = value" per line, '#' comments, unknown keys rejected so a
 * typo is not silently ignored.
 */
#include "worker/wconf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/xalloc.h"

#define WCONF_MAX (64u << 10)

void wconf_release(struct wconf *c)
{
	free(c->master);
	free(c->name);
	free(c->password);
	free(c->password_file);
	memset(c, 0, sizeof(*c));
}

static int wconf_read_file(const char *path, struct buf *out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	char tmp[4096];
	ssize_t n;
	int r = 0;
	while ((n = read(fd, tmp, sizeof(tmp))) > 0)
		if ((r = buf_add(out, tmp, (size_t)n)) < 0)
			break;
	if (n < 0)
		r = -errno;
	close(fd);
	return r;
}

static char *wconf_trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		s[--n] = '\0';
	return s;
}

int wconf_load(const char *dir, struct wconf *ret, char **ret_err)
{
	_cleanup_free_ char *path = xasprintf("%s/worker.conf", dir);
	struct buf b;
	buf_init(&b, WCONF_MAX);
	int r = wconf_read_file(path, &b);
	if (r < 0) {
		*ret_err =
			xasprintf("cannot read '%s': %s", path, strerror(-r == E2BIG ? E2BIG : -r));
		buf_release(&b);
		return r;
	}
	struct wconf c = {0};
	int lineno = 0;
	char *save = NULL;
	r = 0;
	for (char *line = strtok_r(b.ptr, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		lineno++;
		char *s = wconf_trim(line);
		if (!*s || *s == '#')
			continue;
		char *eq = strchr(s, '=');
		if (!eq) {
			*ret_err = xasprintf("%s:%d: expected 'key = value'", path, lineno);
			r = KILN_ECONFIG;
			break;
		}
		*eq = '\0';
		char *k = wconf_trim(s), *v = wconf_trim(eq + 1);
		char **slot = NULL;
		if (!strcmp(k, "master") && c.master) {
			/* again: one more master (conn.h), as a comma-separated list does */
			char *prev = c.master;
			c.master = xasprintf("%s, %s", prev, v);
			free(prev);
		} else if (!strcmp(k, "master"))
			slot = &c.master;
		else if (!strcmp(k, "name"))
			slot = &c.name;
		else if (!strcmp(k, "password"))
			slot = &c.password;
		else if (!strcmp(k, "password_file"))
			slot = &c.password_file;
		else if (!strcmp(k, "send_environ"))
			c.send_environ = !strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes");
		else {
			*ret_err = xasprintf("%s:%d: unknown key '%s'", path, lineno, k);
			r = KILN_ECONFIG;
			break;
		}
		if (slot) {
			free(*slot);
			*slot = xstrdup(v);
		}
	}
	buf_release(&b);
	if (r == 0 && (!c.master || !c.name || (!c.password && !c.password_file))) {
		*ret_err = xasprintf("%s: needs master, name and password or password_file", path);
		r = KILN_ECONFIG;
	}
	if (r < 0) {
		wconf_release(&c);
		return r;
	}
	*ret = c;
	return 0;
}

int wconf_save(const char *dir, const struct wconf *c)
{
	_cleanup_free_ char *path = xasprintf("%s/worker.conf", dir);
	_cleanup_free_ char *tmp = xasprintf("%s/.worker.conf.tmp", dir);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	struct buf b;
	buf_init(&b, WCONF_MAX);
	int r = buf_addf(&b, "# kiln-worker configuration (written by 'kiln-worker create')\n");
	if (r >= 0)
		r = buf_addf(&b, "master = %s\nname = %s\n", c->master, c->name);
	if (r >= 0)
		r = c->password_file ? buf_addf(&b, "password_file = %s\n", c->password_file)
				     : buf_addf(&b, "password = %s\n", c->password);
	if (r >= 0)
		r = buf_addf(&b, "send_environ = %d\n", c->send_environ ? 1 : 0);
	if (r < 0) {
		buf_release(&b);
		close(fd);
		(void)unlink(tmp);
		return -E2BIG; /* values over WCONF_MAX: nothing written */
	}
	ssize_t n = write(fd, b.ptr, b.len);
	r = n == (ssize_t)b.len ? 0 : -EIO;
	buf_release(&b);
	if (fsync(fd) < 0 && r == 0)
		r = -errno;
	close(fd);
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0)
		(void)unlink(tmp);
	return r;
}

int wconf_password(const struct wconf *c, const char *dir, char **ret, char **ret_err)
{
	if (!c->password_file) {
		*ret = xstrdup(c->password);
		return 0;
	}
	_cleanup_free_ char *path = c->password_file[0] == '/'
					    ? xstrdup(c->password_file)
					    : xasprintf("%s/%s", dir, c->password_file);
	struct buf b;
	buf_init(&b, 4096);
	int r = wconf_read_file(path, &b);
	if (r < 0) {
		*ret_err = xasprintf("cannot read password file '%s': %s", path, strerror(-r));
		buf_release(&b);
		return r;
	}
	size_t n = strcspn(b.ptr, "\r\n");
	*ret = xstrndup(b.ptr, n);
	buf_release(&b);
	return 0;
}
