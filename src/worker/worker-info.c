/*
 * kiln-worker's answer to get_worker_info (PROTOCOL.md §3.5): the info/
 * files of the base directory, os-release pairs, the environment (if
 * send_environ), cpu count, version and the command names it speaks.
 */
#define LOG_SUBSYS "worker"
#include "worker/lines.h"
#include "worker/worker-int.h"
#include "worker/worker.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/xalloc.h"

extern char **environ;

#define WORKER_INFO_FILE_MAX (64u << 10)

/* Names reported in worker_commands: the step-side names and the wire names. */
static const char *const worker_info_cmd_names[] = {
	"shell",        "uploadFile",    "upload_file", "uploadDirectory", "upload_directory",
	"downloadFile", "download_file", "mkdir",       "rmdir",           "cpdir",
	"stat",         "glob",          "listdir",     "rmfile",
};

static int worker_info_read_small(const char *path, struct buf *out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	char tmp[4096];
	ssize_t n;
	/* past the cap the head is kept (an info file is text for people); the
	 * sticky overflow would empty the buffer, so take only what fits */
	while ((n = read(fd, tmp, sizeof(tmp))) > 0) {
		size_t take = (size_t)n < buf_room(out) ? (size_t)n : buf_room(out);
		int r = take ? buf_add(out, tmp, take) : 0;
		if (r < 0 || take < (size_t)n)
			break;
	}
	close(fd);
	return 0;
}

/* Packs a pair per WORKERDIR/info/<name> file; returns how many. */
static uint32_t worker_info_files(struct worker *w, struct proto_enc *e)
{
	_cleanup_free_ char *dir = xasprintf("%s/info", w->basedir);
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	uint32_t n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		_cleanup_free_ char *path = xasprintf("%s/%s", dir, de->d_name);
		struct stat st;
		if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		n++;
		struct buf b;
		buf_init(&b, WORKER_INFO_FILE_MAX);
		(void)worker_info_read_small(path, &b);
		lines_pack_repaired(e, de->d_name, strlen(de->d_name));
		lines_pack_repaired(e, b.ptr, b.len);
		buf_release(&b);
	}
	closedir(d);
	return n;
}

/* Packs os_<key> pairs from /etc/os-release; returns how many. */
static uint32_t worker_info_os_release(struct proto_enc *e)
{
	struct buf b;
	buf_init(&b, WORKER_INFO_FILE_MAX);
	if (worker_info_read_small("/etc/os-release", &b) < 0)
		(void)worker_info_read_small("/usr/lib/os-release", &b);
	uint32_t n = 0;
	char *save = NULL;
	for (char *line = strtok_r(b.ptr, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *eq = strchr(line, '=');
		if (!eq || eq == line || line[0] == '#')
			continue;
		*eq = '\0';
		char *v = eq + 1;
		size_t vl = strlen(v);
		if (vl >= 2 && (v[0] == '"' || v[0] == '\'') && v[vl - 1] == v[0]) {
			v++;
			vl -= 2;
		}
		n++;
		/* "os_" + the lower-cased name: sized to fit, so it cannot fail */
		size_t kl = strlen(line);
		_cleanup_free_ char *k = xmalloc(kl + 4);
		memcpy(k, "os_", 3);
		for (size_t i = 0; i < kl; i++)
			k[3 + i] = (line[i] >= 'A' && line[i] <= 'Z') ? (char)(line[i] - 'A' + 'a')
								      : line[i];
		lines_pack_repaired(e, k, kl + 3);
		lines_pack_repaired(e, v, vl);
	}
	buf_release(&b);
	return n;
}

static void worker_info_pack_environ(struct worker *w, struct proto_enc *e)
{
	if (!w->send_environ) {
		/* Buildbot's master needs environ only to expand '~' in transfer paths */
		const char *home = getenv("HOME");
		proto_pack_map(e, home ? 1 : 0);
		if (home) {
			proto_pack_str(e, "HOME");
			lines_pack_repaired(e, home, strlen(home));
		}
		return;
	}
	uint32_t n = 0;
	for (char **p = environ; *p; p++)
		if (strchr(*p, '=') && **p != '=')
			n++;
	proto_pack_map(e, n);
	for (char **p = environ; *p; p++) {
		const char *eq = strchr(*p, '=');
		if (!eq || eq == *p)
			continue;
		lines_pack_repaired(e, *p, (size_t)(eq - *p));
		lines_pack_repaired(e, eq + 1, strlen(eq + 1));
	}
}

void worker_info_reply(struct worker *w, int64_t seq)
{
	struct proto_enc e;
	proto_enc_init(&e);
	proto_pack_map(&e, 3);
	proto_pack_str(&e, "op");
	proto_pack_str(&e, "response");
	proto_pack_str(&e, "seq_number");
	proto_pack_int(&e, seq);
	proto_pack_str(&e, "result");
	/* info files and os-release pairs are packed aside first, so the map header
	 * carries exactly the number of pairs that were packed */
	struct proto_enc files, os;
	proto_enc_init(&files);
	proto_enc_init(&os);
	uint32_t nf2 = worker_info_files(w, &files);
	uint32_t no2 = worker_info_os_release(&os);
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	proto_pack_map(&e, nf2 + no2 + 8);
	msgpack_sbuffer_write(&e.sb, files.sb.data, files.sb.size);
	msgpack_sbuffer_write(&e.sb, os.sb.data, os.sb.size);
	proto_pack_str(&e, "environ");
	worker_info_pack_environ(w, &e);
	proto_pack_str(&e, "system");
	proto_pack_str(&e, "posix");
	proto_pack_str(&e, "basedir");
	proto_pack_str(&e, w->basedir);
	proto_pack_str(&e, "numcpus");
	proto_pack_int(&e, ncpu > 0 ? ncpu : 1);
	proto_pack_str(&e, "version");
	proto_pack_str(&e, "kiln-" KILN_VERSION);
	proto_pack_str(&e, "worker_commands");
	proto_pack_map(&e, ARRAY_SIZE(worker_info_cmd_names));
	for (size_t i = 0; i < ARRAY_SIZE(worker_info_cmd_names); i++) {
		proto_pack_str(&e, worker_info_cmd_names[i]);
		proto_pack_str(&e, "3.1");
	}
	proto_pack_str(&e, "delete_leftover_dirs");
	proto_pack_int(&e, 0);
	/* Kiln's extension (docs/PROTOCOL.md "Re-attach"): a Kiln master then
	 * sends kiln_reattach; Buildbot's keeps it as one more info property */
	proto_pack_str(&e, "kiln_reattach");
	proto_pack_int(&e, 1);
	proto_enc_release(&files);
	proto_enc_release(&os);
	worker_send(w, &e);
	proto_enc_release(&e);
}
