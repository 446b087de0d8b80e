/* The client's directories (-H, SOTTO_HOME or XDG) and its per-profile lock. */
#include "config.h"

#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/client-paths.h"

/* Write a sentence into err, which may be NULL. */
static void cp_error(char *err, size_t errlen, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void
cp_error(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* A new string "a/b" (b may be NULL for a copy of a); NULL when out of memory. */
static char *
cp_join(const char *a, const char *b)
{
	char *s;
	size_t n;

	if (b == NULL)
		return strdup(a);
	n = strlen(a) + 1 + strlen(b) + 1;
	if ((s = malloc(n)) != NULL)
		snprintf(s, n, "%s/%s", a, b);
	return s;
}

int
client_profile_valid(const char *name)
{
	size_t i, n;

	if (name == NULL || (n = strlen(name)) == 0 || n > CLIENT_PROFILE_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		char c = name[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
			continue;
		/* No leading dot or dash: the name becomes a directory and shows in messages. */
		if (i > 0 && (c == '.' || c == '_' || c == '-'))
			continue;
		return 0;
	}
	return 1;
}

/* An absolute XDG variable's value, or NULL when unset, empty or relative. */
static const char *
cp_xdg(const char *var)
{
	const char *v = getenv(var);

	return v != NULL && v[0] == '/' ? v : NULL;
}

/* $HOME, else the password database's home directory; NULL if neither is absolute. */
static const char *
cp_user_home(void)
{
	const struct passwd *pw;
	const char *home = getenv("HOME");

	if (home != NULL && home[0] == '/')
		return home;
	if ((pw = getpwuid(getuid())) != NULL && pw->pw_dir != NULL && pw->pw_dir[0] == '/')
		return pw->pw_dir;
	return NULL;
}

/* "base/rest" for an XDG directory, from xdg when set, else from the user's home. */
static int
cp_xdg_dir(char **out, const char *xdg_var, const char *fallback, const char *rest, char *err,
        size_t errlen)
{
	const char *base = cp_xdg(xdg_var), *home;
	char *tmp = NULL;

	*out = NULL;
	if (base == NULL) {
		if ((home = cp_user_home()) == NULL) {
			cp_error(err, errlen, "no home directory; set HOME, %s or %s", xdg_var,
			        CLIENT_HOME_ENV);
			return SOTTO_ERR_NOTFOUND;
		}
		if ((tmp = cp_join(home, fallback)) == NULL)
			return SOTTO_ERR_NOMEM;
		base = tmp;
	}
	*out = cp_join(base, rest);
	free(tmp);
	return *out == NULL ? SOTTO_ERR_NOMEM : 0;
}

void
client_paths_free(struct client_paths *p)
{
	if (p == NULL)
		return;
	client_paths_unlock(p);
	free(p->profile);
	free(p->config_dir);
	free(p->data_dir);
	free(p->conf);
	free(p->known_servers);
	free(p->known_peers);
	free(p->identity);
	free(p->identity_pub);
	free(p->db);
	free(p->lock);
	free(p);
}

int
client_paths_resolve(
        struct client_paths **out, const char *home, const char *profile, char *err, size_t errlen)
{
	struct client_paths *p = NULL;
	char *rest = NULL;
	int r;

	*out = NULL;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (profile == NULL)
		profile = CLIENT_DEFAULT_PROFILE;
	if (!client_profile_valid(profile)) {
		cp_error(err, errlen,
		        "bad profile name \"%.*s\": use letters, digits, '.', '_' and '-', "
		        "at most %d",
		        CLIENT_PROFILE_MAX + 1, profile, CLIENT_PROFILE_MAX);
		return SOTTO_ERR_INVALID;
	}
	if (home == NULL && (home = getenv(CLIENT_HOME_ENV)) != NULL && home[0] == '\0')
		home = NULL;
	else if (home != NULL && home[0] == '\0') {
		cp_error(err, errlen, "the home directory (-H) is empty");
		return SOTTO_ERR_INVALID;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return SOTTO_ERR_NOMEM;
	p->lock_fd = -1;
	r = SOTTO_ERR_NOMEM;
	if ((p->profile = strdup(profile)) == NULL)
		goto out;
	if (home != NULL) {
		p->home = 1;
		if ((p->config_dir = strdup(home)) == NULL)
			goto out;
		if (strcmp(profile, CLIENT_DEFAULT_PROFILE) == 0)
			p->data_dir = strdup(home);
		else
			p->data_dir = cp_join(home, profile);
		if (p->data_dir == NULL)
			goto out;
	} else {
		if ((r = cp_xdg_dir(&p->config_dir, "XDG_CONFIG_HOME", ".config", "sotto", err,
		             errlen)) != 0)
			goto out;
		if ((rest = cp_join("sotto", profile)) == NULL) {
			r = SOTTO_ERR_NOMEM;
			goto out;
		}
		if ((r = cp_xdg_dir(&p->data_dir, "XDG_DATA_HOME", ".local/share", rest, err,
		             errlen)) != 0)
			goto out;
		r = SOTTO_ERR_NOMEM;
	}
	if ((p->conf = cp_join(p->config_dir, CLIENT_CONF_FILE)) == NULL ||
	        (p->known_servers = cp_join(p->config_dir, CLIENT_KNOWN_SERVERS_FILE)) == NULL ||
	        (p->known_peers = cp_join(p->config_dir, CLIENT_KNOWN_PEERS_FILE)) == NULL ||
	        (p->identity = cp_join(p->data_dir, CLIENT_IDENTITY_FILE)) == NULL ||
	        (p->identity_pub = cp_join(p->data_dir, CLIENT_IDENTITY_PUB_FILE)) == NULL ||
	        (p->db = cp_join(p->data_dir, CLIENT_DB_FILE)) == NULL ||
	        (p->lock = cp_join(p->data_dir, CLIENT_LOCK_FILE)) == NULL)
		goto out;
	*out = p;
	p = NULL;
	r = 0;
out:
	if (r == SOTTO_ERR_NOMEM)
		cp_error(err, errlen, "out of memory");
	free(rest);
	client_paths_free(p);
	return r;
}

/* mkdir -p with mode 0700 for the components it creates; errno says why on failure. */
static int
cp_mkdir_p(const char *path)
{
	struct stat sb;
	char *copy, *s;
	int r = 0, last;

	if ((copy = strdup(path)) == NULL)
		return SOTTO_ERR_NOMEM;
	for (s = copy + 1; r == 0; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		last = *s == '\0';
		*s = '\0';
		if (mkdir(copy, CLIENT_PATHS_DIR_MODE) != 0 && errno != EEXIST)
			r = errno == EACCES ? SOTTO_ERR_PERM : SOTTO_ERR_IO;
		else if (stat(copy, &sb) != 0)
			r = SOTTO_ERR_IO;
		else if (!S_ISDIR(sb.st_mode)) {
			errno = ENOTDIR;
			r = SOTTO_ERR_IO;
		}
		if (last)
			break;
		*s = '/';
	}
	free(copy);
	return r;
}

int
client_paths_mkdirs(const struct client_paths *p, char *err, size_t errlen)
{
	const char *dirs[2] = {p->config_dir, p->data_dir};
	size_t i;
	int r;

	for (i = 0; i < 2; i++) {
		if ((r = cp_mkdir_p(dirs[i])) != 0) {
			cp_error(err, errlen, "cannot create %s: %s", dirs[i],
			        r == SOTTO_ERR_NOMEM ? "out of memory" : strerror(errno));
			return r;
		}
	}
	return 0;
}

/* The pid a lock holder wrote into its lock file, or 0 if it cannot be read yet. */
static long
cp_lock_owner(int fd)
{
	char buf[32];
	ssize_t n;
	long pid = 0;
	size_t i;

	if ((n = pread(fd, buf, sizeof(buf) - 1, 0)) <= 0)
		return 0;
	buf[n] = '\0';
	for (i = 0; buf[i] >= '0' && buf[i] <= '9' && i < 12; i++)
		pid = pid * 10 + (buf[i] - '0');
	if (i == 0 || (buf[i] != '\n' && buf[i] != '\0'))
		return 0;
	return pid;
}

/* The "another sotto is using ..." sentence for a lock we could not take. */
static void
cp_lock_busy(const struct client_paths *p, int fd, char *err, size_t errlen)
{
	char who[64] = "";
	long pid = cp_lock_owner(fd);

	if (pid > 0)
		snprintf(who, sizeof(who), " (pid %ld)", pid);
	if (p->home && strcmp(p->profile, CLIENT_DEFAULT_PROFILE) == 0)
		cp_error(err, errlen, "another sotto is using %s%s; close it first", p->data_dir,
		        who);
	else
		cp_error(err, errlen, "another sotto is using profile %s%s; close it first",
		        p->profile, who);
}

int
client_paths_lock(struct client_paths *p, char *err, size_t errlen)
{
	char pid[32];
	int fd = -1, r, n;

	if (p->lock_fd != -1)
		return 0;
	if ((r = cp_mkdir_p(p->data_dir)) != 0) {
		cp_error(err, errlen, "cannot create %s: %s", p->data_dir,
		        r == SOTTO_ERR_NOMEM ? "out of memory" : strerror(errno));
		return r;
	}
	fd = open(p->lock, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd == -1) {
		cp_error(err, errlen, "%s: %s", p->lock, strerror(errno));
		return errno == EACCES ? SOTTO_ERR_PERM : SOTTO_ERR_IO;
	}
	/* LOCK_NB: a second process must say so at once, never wait for the first. */
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno == EWOULDBLOCK) {
			cp_lock_busy(p, fd, err, errlen);
			r = SOTTO_ERR_AGAIN;
		} else {
			cp_error(err, errlen, "cannot lock %s: %s", p->lock, strerror(errno));
			r = SOTTO_ERR_IO;
		}
		goto out;
	}
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
		cp_error(err, errlen, "%s: %s", p->lock, strerror(errno));
		r = SOTTO_ERR_IO;
		goto out;
	}
	p->lock_fd = fd;
	fd = -1;
	r = 0;
out:
	if (fd != -1)
		close(fd);
	return r;
}

void
client_paths_unlock(struct client_paths *p)
{
	int rc;

	if (p->lock_fd == -1)
		return;
	/* Emptied first, so that a stale pid never names a process that no longer holds it. */
	rc = ftruncate(p->lock_fd, 0);
	(void)rc; /* harmless if it fails: the next holder rewrites the file */
	close(p->lock_fd);
	p->lock_fd = -1;
}
