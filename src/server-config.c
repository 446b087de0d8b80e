/* sottod.conf and its command-line flags, through one validating setter; see server-config.h. */
#include "config.h"

#include <arpa/inet.h>

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/server-config.h"
#include "src/proto.h"

#define CONFIG_BY_DEFAULT 0
#define CONFIG_BY_FILE    1
#define CONFIG_BY_FLAG    2

enum config_type {
	CONFIG_T_COUNT,   /* a plain number */
	CONFIG_T_BYTES,   /* a number with an optional K, M or G suffix (powers of 1024) */
	CONFIG_T_BYTES64, /* the same in a uint64_t field, also with T */
	CONFIG_T_SECONDS, /* a number with an optional s, m, h or d suffix */
	CONFIG_T_PATH,    /* a non-empty string */
	CONFIG_T_LISTEN,  /* host:port, repeatable */
	CONFIG_T_ADMINS,  /* comma-separated usernames, repeatable */
	CONFIG_T_REGISTRATION,
	CONFIG_T_LOG_LEVEL,
	CONFIG_T_BOOL,
};

struct config_key {
	const char *name;
	enum config_type type;
	size_t off; /* of the uint32_t, uint64_t or char * field */
	uint64_t min, max;
};

#define CONFIG_U32(name, type, min, max)                             \
	{                                                            \
#name, type, offsetof(struct config, name), min, max \
	}
#define CONFIG_STR(name, type)                                   \
	{                                                        \
#name, type, offsetof(struct config, name), 0, 0 \
	}

/* A byte count in a uint64_t field. */
#define CONFIG_U64(name, min, max) CONFIG_U32(name, CONFIG_T_BYTES64, min, max)

static const struct config_key config_keys[] = {
        CONFIG_STR(listen, CONFIG_T_LISTEN),
        CONFIG_STR(state_dir, CONFIG_T_PATH),
        CONFIG_STR(cert, CONFIG_T_PATH),
        CONFIG_STR(key, CONFIG_T_PATH),
        CONFIG_STR(registration, CONFIG_T_REGISTRATION),
        CONFIG_U32(max_auth_failures, CONFIG_T_COUNT, 1, 100),
        CONFIG_U32(block_duration, CONFIG_T_SECONDS, 1, 30 * 86400),
        CONFIG_U32(idle_timeout, CONFIG_T_SECONDS, 0, 7 * 86400),
        CONFIG_U32(handshake_timeout, CONFIG_T_SECONDS, 1, 300),
        CONFIG_U32(auth_timeout, CONFIG_T_SECONDS, 1, 3600),
        CONFIG_U32(max_frame_preauth, CONFIG_T_BYTES, 1024, 16777216),
        CONFIG_U32(max_frame, CONFIG_T_BYTES, 1024, 16777216),
        CONFIG_U32(max_conns_per_addr, CONFIG_T_COUNT, 0, 1000000),
        CONFIG_U32(rate_limit, CONFIG_T_COUNT, 1, 1000000),
        CONFIG_U32(rate_burst, CONFIG_T_COUNT, 1, 1000000),
        CONFIG_U32(auth_throttle, CONFIG_T_COUNT, 0, 100000),
        CONFIG_U32(output_high_water, CONFIG_T_BYTES, 65536, 1073741824),
        CONFIG_U32(commit_window_ms, CONFIG_T_COUNT, 0, 1000),
        CONFIG_U64(max_file_size, 0, CONFIG_FILE_BYTES_MAX),
        CONFIG_U64(user_quota, 0, CONFIG_FILE_BYTES_MAX),
        CONFIG_U32(file_ttl, CONFIG_T_SECONDS, 1, 365 * 86400),
        CONFIG_U32(max_group_members, CONFIG_T_COUNT, 2, 10000),
        CONFIG_U32(max_groups_per_user, CONFIG_T_COUNT, 1, 100000),
        CONFIG_U32(live_wait_ms, CONFIG_T_COUNT, 0, 60000),
        CONFIG_STR(admins, CONFIG_T_ADMINS),
        CONFIG_STR(log_level, CONFIG_T_LOG_LEVEL),
        CONFIG_STR(syslog, CONFIG_T_BOOL),
        CONFIG_STR(openssl_records, CONFIG_T_BOOL),
};
#define CONFIG_NKEYS (sizeof(config_keys) / sizeof(config_keys[0]))
_Static_assert(CONFIG_NKEYS <= CONFIG_KEYS_MAX, "raise CONFIG_KEYS_MAX");

/* A value parsed but not yet applied, so that a bad value changes nothing. */
struct config_value {
	uint32_t u;
	uint64_t u64; /* CONFIG_T_BYTES64 */
	char *s;
	struct config_listen *listen;
	char **names;
	size_t n;
};

/* snprintf into err, tolerating a NULL or empty buffer. */
static void __attribute__((format(printf, 3, 4)))
config_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static void
config_value_free(struct config_value *v)
{
	size_t i;

	free(v->s);
	for (i = 0; v->listen != NULL && i < v->n; i++) {
		free(v->listen[i].host);
		free(v->listen[i].port);
	}
	free(v->listen);
	for (i = 0; v->names != NULL && i < v->n; i++)
		free(v->names[i]);
	free(v->names);
	memset(v, 0, sizeof(*v));
}

static uint32_t *
config_u32(struct config *cfg, const struct config_key *k)
{
	return (uint32_t *)(void *)((char *)cfg + k->off);
}

static uint64_t *
config_u64(struct config *cfg, const struct config_key *k)
{
	return (uint64_t *)(void *)((char *)cfg + k->off);
}

static char **
config_strp(struct config *cfg, const struct config_key *k)
{
	return (char **)(void *)((char *)cfg + k->off);
}

static const struct config_key *
config_find(const char *key, size_t *index)
{
	char norm[64];
	size_t i;

	for (i = 0; key[i] != '\0'; i++) {
		if (i + 1 >= sizeof(norm))
			return NULL;
		norm[i] = key[i] == '-' ? '_' : key[i];
	}
	norm[i] = '\0';
	for (i = 0; i < CONFIG_NKEYS; i++) {
		if (strcmp(config_keys[i].name, norm) == 0) {
			*index = i;
			return &config_keys[i];
		}
	}
	return NULL;
}

const char *
config_key_name(size_t i)
{
	return i < CONFIG_NKEYS ? config_keys[i].name : NULL;
}

/* A number with an optional one-letter unit from units (multipliers in mult). */
static int
config_parse_number(const char *s, const char *units, const uint64_t *mult, uint64_t *out)
{
	const char *u;
	uint64_t v = 0;
	size_t i;

	if (s[0] < '0' || s[0] > '9')
		return -1;
	for (i = 0; s[i] >= '0' && s[i] <= '9'; i++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (s[i] != '\0') {
		if (s[i + 1] != '\0' || units == NULL || (u = strchr(units, s[i])) == NULL)
			return -1;
		if (v > UINT64_MAX / mult[u - units])
			return -1;
		v *= mult[u - units];
	}
	*out = v;
	return 0;
}

static int
config_parse_uint(
        const struct config_key *k, const char *value, uint64_t *out, char *err, size_t errlen)
{
	static const uint64_t bytes_mult[] = {1024, 1024, 1048576, 1048576, 1073741824, 1073741824,
	        UINT64_C(1099511627776), UINT64_C(1099511627776)};
	static const uint64_t secs_mult[] = {1, 60, 3600, 86400};
	uint64_t v;
	int r;

	switch (k->type) {
	case CONFIG_T_BYTES:
		r = config_parse_number(value, "KkMmGg", bytes_mult, &v);
		break;
	case CONFIG_T_BYTES64:
		r = config_parse_number(value, "KkMmGgTt", bytes_mult, &v);
		break;
	case CONFIG_T_SECONDS:
		r = config_parse_number(value, "smhd", secs_mult, &v);
		break;
	default:
		r = config_parse_number(value, NULL, NULL, &v);
		break;
	}
	if (r != 0) {
		if (k->type == CONFIG_T_BYTES || k->type == CONFIG_T_BYTES64)
			config_err(err, errlen,
			        "%s: expected a size such as 65536 or 64K, got \"%s\"", k->name,
			        value);
		else if (k->type == CONFIG_T_SECONDS)
			config_err(err, errlen,
			        "%s: expected seconds, or a duration such as 5m or 2h, got \"%s\"",
			        k->name, value);
		else
			config_err(
			        err, errlen, "%s: expected a number, got \"%s\"", k->name, value);
		return SOTTO_ERR_INVALID;
	}
	if (v < k->min || v > k->max) {
		config_err(err, errlen, "%s: must be between %llu and %llu", k->name,
		        (unsigned long long)k->min, (unsigned long long)k->max);
		return SOTTO_ERR_INVALID;
	}
	*out = v;
	return 0;
}

/* 1 if s is a plausible host name or IPv4 literal (resolved only when binding). */
static int
config_hostname_ok(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++) {
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		            (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '-'))
			return 0;
	}
	return i > 0 && i <= 253;
}

/* A bracketed IPv6 literal, optionally with a %zone. */
static int
config_ipv6_ok(const char *s)
{
	struct in6_addr a;
	char tmp[INET6_ADDRSTRLEN + 1];
	size_t n = strcspn(s, "%");

	if (n == 0 || n >= sizeof(tmp) || (s[n] == '%' && s[n + 1] == '\0'))
		return 0;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	return inet_pton(AF_INET6, tmp, &a) == 1;
}

/* Parse "host:port", "[v6]:port", ":port", "*:port" or "port" into one config_listen. */
static int
config_parse_listen(const char *value, struct config_value *v, char *err, size_t errlen)
{
	const char *host, *port, *colon;
	size_t hostlen, i;
	uint64_t pn;

	if (value[0] == '[') {
		const char *close = strchr(value, ']');

		if (close == NULL || close == value + 1 || close[1] != ':')
			goto syntax;
		host = value + 1;
		hostlen = (size_t)(close - host);
		port = close + 2;
	} else if ((colon = strrchr(value, ':')) != NULL) {
		if (strchr(value, ':') != colon) {
			config_err(err, errlen,
			        "listen: put IPv6 addresses in brackets, as in [::1]:7443");
			return SOTTO_ERR_INVALID;
		}
		host = value;
		hostlen = (size_t)(colon - value);
		port = colon + 1;
	} else {
		host = "";
		hostlen = 0;
		port = value;
	}
	if (config_parse_number(port, NULL, NULL, &pn) != 0 || pn > 65535) {
		config_err(err, errlen,
		        "listen: the port must be a number between 0 and 65535 (0: any free port)");
		return SOTTO_ERR_INVALID;
	}
	if (hostlen == 1 && host[0] == '*')
		hostlen = 0;
	if ((v->listen = calloc(1, sizeof(*v->listen))) == NULL)
		return SOTTO_ERR_NOMEM;
	v->n = 1;
	if ((v->listen->host = strndup(host, hostlen)) == NULL ||
	        (v->listen->port = strdup(port)) == NULL)
		return SOTTO_ERR_NOMEM;
	/* Drop leading zeros so that equal ports compare equal. */
	for (i = 0; v->listen->port[i] == '0' && v->listen->port[i + 1] != '\0'; i++)
		;
	memmove(v->listen->port, v->listen->port + i, strlen(v->listen->port + i) + 1);
	if (hostlen > 0 && !(value[0] == '[' ? config_ipv6_ok(v->listen->host)
	                                     : config_hostname_ok(v->listen->host))) {
		config_err(err, errlen, "listen: \"%s\" is not a valid address", v->listen->host);
		return SOTTO_ERR_INVALID;
	}
	return 0;
syntax:
	config_err(
	        err, errlen, "listen: expected host:port, [IPv6]:port or :port, got \"%s\"", value);
	return SOTTO_ERR_INVALID;
}

/* Parse a comma-separated list of usernames, normalised to lower case. */
static int
config_parse_admins(const char *value, struct config_value *v, char *err, size_t errlen)
{
	char name[PROTO_USERNAME_MAX + 1], item[64];
	const char *p = value, *end;
	size_t len, count = 1;

	for (end = value; *end != '\0'; end++)
		count += *end == ',';
	if (count > CONFIG_LIST_MAX) {
		config_err(err, errlen, "admins: too many names (at most %d)", CONFIG_LIST_MAX);
		return SOTTO_ERR_INVALID;
	}
	if ((v->names = calloc(count, sizeof(*v->names))) == NULL)
		return SOTTO_ERR_NOMEM;
	while (*p != '\0') {
		end = p + strcspn(p, ",");
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		len = (size_t)(end - p);
		while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (len > 0) {
			if (len >= sizeof(item))
				len = sizeof(item) - 1;
			memcpy(item, p, len);
			item[len] = '\0';
			if (proto_username_normalize(name, item) != 0) {
				config_err(err, errlen, "admins: \"%s\" is not a valid username",
				        item);
				return SOTTO_ERR_INVALID;
			}
			if ((v->names[v->n] = strdup(name)) == NULL)
				return SOTTO_ERR_NOMEM;
			v->n++;
		}
		p = *end == ',' ? end + 1 : end;
	}
	if (v->n == 0) {
		config_err(err, errlen, "admins: expected one or more usernames");
		return SOTTO_ERR_INVALID;
	}
	return 0;
}

/* Turn value into a config_value for key k, or explain why not. */
static int
config_parse(const struct config_key *k, const char *value, struct config_value *v, char *err,
        size_t errlen)
{
	static const char *const levels[] = {"error", "warning", "info", "debug", "warn"};
	static const enum log_level level_values[] = {
	        LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG, LOG_LEVEL_WARN};
	size_t i;

	memset(v, 0, sizeof(*v));
	if (value == NULL || value[0] == '\0') {
		config_err(err, errlen, "%s: missing value", k->name);
		return SOTTO_ERR_INVALID;
	}
	switch (k->type) {
	case CONFIG_T_COUNT:
	case CONFIG_T_BYTES:
	case CONFIG_T_BYTES64:
	case CONFIG_T_SECONDS:
		/* Every 32-bit key's max fits in 32 bits, so v->u holds what was accepted. */
		if (config_parse_uint(k, value, &v->u64, err, errlen) != 0)
			return SOTTO_ERR_INVALID;
		v->u = (uint32_t)v->u64;
		return 0;
	case CONFIG_T_PATH:
		if (strlen(value) >= 4096) {
			config_err(err, errlen, "%s: path too long", k->name);
			return SOTTO_ERR_INVALID;
		}
		return (v->s = strdup(value)) == NULL ? SOTTO_ERR_NOMEM : 0;
	case CONFIG_T_LISTEN:
		return config_parse_listen(value, v, err, errlen);
	case CONFIG_T_ADMINS:
		return config_parse_admins(value, v, err, errlen);
	case CONFIG_T_REGISTRATION:
		if (strcmp(value, "open") == 0)
			v->u = CONFIG_REGISTRATION_OPEN;
		else if (strcmp(value, "invite") == 0)
			v->u = CONFIG_REGISTRATION_INVITE;
		else if (strcmp(value, "closed") == 0)
			v->u = CONFIG_REGISTRATION_CLOSED;
		else
			break;
		return 0;
	case CONFIG_T_LOG_LEVEL:
		for (i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
			if (strcmp(value, levels[i]) == 0) {
				v->u = (uint32_t)level_values[i];
				return 0;
			}
		}
		break;
	case CONFIG_T_BOOL:
		if (strcmp(value, "yes") == 0 || strcmp(value, "true") == 0 ||
		        strcmp(value, "on") == 0 || strcmp(value, "1") == 0)
			v->u = 1;
		else if (strcmp(value, "no") == 0 || strcmp(value, "false") == 0 ||
		         strcmp(value, "off") == 0 || strcmp(value, "0") == 0)
			v->u = 0;
		else
			break;
		return 0;
	}
	switch (k->type) {
	case CONFIG_T_REGISTRATION:
		config_err(err, errlen, "%s: must be open, invite or closed", k->name);
		break;
	case CONFIG_T_LOG_LEVEL:
		config_err(err, errlen, "%s: must be error, warning, info or debug", k->name);
		break;
	default:
		config_err(err, errlen, "%s: must be yes or no", k->name);
		break;
	}
	return SOTTO_ERR_INVALID;
}

static void
config_listen_clear(struct config *cfg)
{
	size_t i;

	for (i = 0; i < cfg->n_listen; i++) {
		free(cfg->listen[i].host);
		free(cfg->listen[i].port);
	}
	free(cfg->listen);
	cfg->listen = NULL;
	cfg->n_listen = 0;
}

static void
config_admins_clear(struct config *cfg)
{
	size_t i;

	for (i = 0; i < cfg->n_admins; i++)
		free(cfg->admins[i]);
	free(cfg->admins);
	cfg->admins = NULL;
	cfg->n_admins = 0;
}

/*
 * Move a parsed value into cfg (taking its allocations).  Lists append, or
 * replace when replace is set; nothing changes unless this succeeds.
 */
static int
config_apply(struct config *cfg, const struct config_key *k, struct config_value *v, int replace,
        char *err, size_t errlen)
{
	struct config_listen *nl;
	size_t i, have;
	char **np;

	switch (k->type) {
	case CONFIG_T_COUNT:
	case CONFIG_T_BYTES:
	case CONFIG_T_SECONDS:
		*config_u32(cfg, k) = v->u;
		break;
	case CONFIG_T_BYTES64:
		*config_u64(cfg, k) = v->u64;
		break;
	case CONFIG_T_PATH:
		free(*config_strp(cfg, k));
		*config_strp(cfg, k) = v->s;
		v->s = NULL;
		break;
	case CONFIG_T_LISTEN:
		have = replace ? 0 : cfg->n_listen;
		if (have + v->n > CONFIG_LIST_MAX) {
			config_err(err, errlen, "listen: too many addresses (at most %d)",
			        CONFIG_LIST_MAX);
			return SOTTO_ERR_INVALID;
		}
		for (i = 0; i < have; i++) {
			if (strcmp(cfg->listen[i].host, v->listen->host) == 0 &&
			        strcmp(cfg->listen[i].port, v->listen->port) == 0) {
				config_err(err, errlen, "listen: the same address is given twice");
				return SOTTO_ERR_INVALID;
			}
		}
		if ((nl = malloc((have + v->n) * sizeof(*nl))) == NULL)
			return SOTTO_ERR_NOMEM;
		if (have > 0)
			memcpy(nl, cfg->listen, have * sizeof(*nl));
		memcpy(&nl[have], v->listen, v->n * sizeof(*nl));
		if (replace)
			config_listen_clear(cfg);
		free(cfg->listen);
		cfg->listen = nl;
		cfg->n_listen = have + v->n;
		free(v->listen);
		v->listen = NULL;
		v->n = 0;
		break;
	case CONFIG_T_ADMINS:
		have = replace ? 0 : cfg->n_admins;
		if (have + v->n > CONFIG_LIST_MAX) {
			config_err(err, errlen, "admins: too many names (at most %d)",
			        CONFIG_LIST_MAX);
			return SOTTO_ERR_INVALID;
		}
		if ((np = malloc((have + v->n) * sizeof(*np))) == NULL)
			return SOTTO_ERR_NOMEM;
		if (have > 0)
			memcpy(np, cfg->admins, have * sizeof(*np));
		memcpy(&np[have], v->names, v->n * sizeof(*np));
		if (replace)
			config_admins_clear(cfg);
		free(cfg->admins);
		cfg->admins = np;
		cfg->n_admins = have + v->n;
		free(v->names);
		v->names = NULL;
		v->n = 0;
		break;
	case CONFIG_T_REGISTRATION:
		cfg->registration = (enum config_registration)v->u;
		break;
	case CONFIG_T_LOG_LEVEL:
		cfg->log_level = (enum log_level)v->u;
		break;
	case CONFIG_T_BOOL:
		*(int *)(void *)((char *)cfg + k->off) = (int)v->u;
		break;
	}
	return 0;
}

/* The one path every value takes, from a flag (line 0) or from a file line. */
static int
config_set_from(struct config *cfg, const char *key, const char *value, int by, unsigned line,
        char *err, size_t errlen)
{
	const struct config_key *k;
	struct config_value v;
	size_t idx = 0;
	int r, list;

	if ((k = config_find(key, &idx)) == NULL) {
		config_err(err, errlen, "%s: unknown key", key);
		return SOTTO_ERR_NOTFOUND;
	}
	if ((r = config_parse(k, value, &v, err, errlen)) != 0)
		goto out;
	list = k->type == CONFIG_T_LISTEN || k->type == CONFIG_T_ADMINS;
	if (by == CONFIG_BY_FILE) {
		/* A flag wins over the file; the value was still checked above. */
		if (cfg->set_by[idx] == CONFIG_BY_FLAG)
			goto out;
		if (!list && cfg->set_by[idx] == CONFIG_BY_FILE) {
			config_err(err, errlen, "%s: already set on line %u", k->name,
			        cfg->set_line[idx]);
			r = SOTTO_ERR_INVALID;
			goto out;
		}
	}
	/* The first value from a stronger source replaces a list instead of extending it. */
	if ((r = config_apply(cfg, k, &v, list && cfg->set_by[idx] < by, err, errlen)) != 0)
		goto out;
	cfg->set_by[idx] = (unsigned char)by;
	cfg->set_line[idx] = line;
out:
	if (r == SOTTO_ERR_NOMEM)
		config_err(err, errlen, "%s: out of memory", k->name);
	config_value_free(&v);
	return r;
}

int
config_init(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->registration = CONFIG_REGISTRATION_OPEN;
	cfg->max_auth_failures = 3;
	cfg->block_duration = 60;
	cfg->idle_timeout = 0;
	cfg->handshake_timeout = 10;
	cfg->auth_timeout = 30;
	cfg->max_frame_preauth = 65536;
	cfg->max_frame = 1048576;
	cfg->max_conns_per_addr = 64;
	cfg->rate_limit = 200;
	cfg->rate_burst = 400;
	cfg->auth_throttle = 20;
	cfg->output_high_water = 1048576;
	cfg->commit_window_ms = 1;
	cfg->max_file_size = CONFIG_DEFAULT_MAX_FILE_SIZE;
	cfg->user_quota = CONFIG_DEFAULT_USER_QUOTA;
	cfg->file_ttl = CONFIG_DEFAULT_FILE_TTL;
	cfg->max_group_members = 1000;
	cfg->max_groups_per_user = 500;
	cfg->live_wait_ms = 200;
	cfg->log_level = LOG_LEVEL_INFO;
	cfg->syslog = 0;
	cfg->openssl_records = 0;
	if ((cfg->state_dir = strdup(CONFIG_DEFAULT_STATE_DIR)) == NULL)
		return SOTTO_ERR_NOMEM;
	return 0;
}

void
config_free(struct config *cfg)
{
	if (cfg == NULL)
		return;
	config_listen_clear(cfg);
	config_admins_clear(cfg);
	free(cfg->state_dir);
	free(cfg->cert);
	free(cfg->key);
	memset(cfg, 0, sizeof(*cfg));
}

int
config_set(struct config *cfg, const char *key, const char *value, char *err, size_t errlen)
{
	if (key == NULL)
		return SOTTO_ERR_INVALID;
	return config_set_from(cfg, key, value, CONFIG_BY_FLAG, 0, err, errlen);
}

/*
 * Read one line of at most CONFIG_LINE_MAX bytes into line (NUL-terminated,
 * newline dropped): 1 for a line, 0 at end of file, -1 too long, -2 NUL byte.
 */
static int
config_read_line(FILE *fp, char *line, size_t cap)
{
	size_t n = 0;
	int c, bad = 0;

	while ((c = getc(fp)) != EOF && c != '\n') {
		if (c == '\0')
			bad = -2;
		if (n + 1 >= cap) {
			if (bad == 0)
				bad = -1;
			continue;
		}
		line[n++] = (char)c;
	}
	line[n] = '\0';
	if (bad != 0)
		return bad;
	return c == EOF && n == 0 ? 0 : 1;
}

/* Trim blanks (and a CR from CRLF files) at both ends, in place. */
static char *
config_trim(char *s)
{
	size_t n;

	while (*s == ' ' || *s == '\t')
		s++;
	n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		s[--n] = '\0';
	return s;
}

int
config_load(struct config *cfg, const char *path, char *err, size_t errlen)
{
	char line[CONFIG_LINE_MAX + 2], msg[512], *p, *eq, *key, *value;
	unsigned lineno = 0;
	FILE *fp = NULL;
	int r = 0, lr;

	if ((fp = fopen(path, "re")) == NULL) {
		config_err(err, errlen, "%s: %s", path, strerror(errno));
		return errno == ENOENT ? SOTTO_ERR_NOTFOUND : SOTTO_ERR_IO;
	}
	while ((lr = config_read_line(fp, line, sizeof(line))) != 0) {
		lineno++;
		if (lr == -1) {
			config_err(err, errlen, "%s:%u: line too long (at most %d bytes)", path,
			        lineno, CONFIG_LINE_MAX);
			r = SOTTO_ERR_INVALID;
			goto out;
		}
		if (lr == -2) {
			config_err(err, errlen, "%s:%u: line contains a NUL byte", path, lineno);
			r = SOTTO_ERR_INVALID;
			goto out;
		}
		p = line;
		if (lineno == 1 && strncmp(p, "\xef\xbb\xbf", 3) == 0)
			p += 3; /* a UTF-8 byte-order mark */
		p = config_trim(p);
		if (*p == '\0' || *p == '#')
			continue;
		if ((eq = strchr(p, '=')) == NULL || eq == p) {
			config_err(err, errlen, "%s:%u: expected \"key = value\"", path, lineno);
			r = SOTTO_ERR_INVALID;
			goto out;
		}
		*eq = '\0';
		key = config_trim(p);
		value = config_trim(eq + 1);
		if (*key == '\0' || strpbrk(key, " \t") != NULL) {
			config_err(err, errlen, "%s:%u: expected \"key = value\"", path, lineno);
			r = SOTTO_ERR_INVALID;
			goto out;
		}
		if ((r = config_set_from(
		             cfg, key, value, CONFIG_BY_FILE, lineno, msg, sizeof(msg))) != 0) {
			config_err(err, errlen, "%s:%u: %s", path, lineno, msg);
			if (r == SOTTO_ERR_NOTFOUND)
				r = SOTTO_ERR_INVALID;
			goto out;
		}
	}
	if (ferror(fp)) {
		config_err(err, errlen, "%s: %s", path, strerror(errno));
		r = SOTTO_ERR_IO;
	}
out:
	fclose(fp);
	return r;
}

/* dir + "/" + file as a new string. */
static char *
config_join(const char *dir, const char *file)
{
	size_t n = strlen(dir) + 1 + strlen(file) + 1;
	char *s;

	if ((s = malloc(n)) == NULL)
		return NULL;
	snprintf(s, n, "%s/%s", dir, file);
	return s;
}

int
config_finish(struct config *cfg, char *err, size_t errlen)
{
	struct config_value v;
	int r;

	if (cfg->n_listen == 0) {
		memset(&v, 0, sizeof(v));
		r = config_parse_listen(CONFIG_DEFAULT_LISTEN, &v, err, errlen);
		if (r == 0)
			r = config_apply(cfg, &config_keys[0], &v, 0, err, errlen);
		config_value_free(&v);
		if (r != 0)
			return r;
	}
	if (cfg->cert == NULL && (cfg->cert = config_join(cfg->state_dir, "server.crt")) == NULL)
		return SOTTO_ERR_NOMEM;
	if (cfg->key == NULL && (cfg->key = config_join(cfg->state_dir, "server.key")) == NULL)
		return SOTTO_ERR_NOMEM;
	return config_check(cfg, err, errlen);
}

int
config_check(const struct config *cfg, char *err, size_t errlen)
{
	if (cfg->n_listen == 0) {
		config_err(err, errlen, "listen: no address to listen on");
		return SOTTO_ERR_INVALID;
	}
	if (cfg->state_dir == NULL || cfg->state_dir[0] == '\0') {
		config_err(err, errlen, "state_dir: missing value");
		return SOTTO_ERR_INVALID;
	}
	if (cfg->cert == NULL || cfg->key == NULL) {
		config_err(err, errlen, "%s: missing value", cfg->cert == NULL ? "cert" : "key");
		return SOTTO_ERR_INVALID;
	}
	if (cfg->max_frame_preauth > cfg->max_frame) {
		config_err(err, errlen, "max_frame_preauth: must not exceed max_frame (%u)",
		        cfg->max_frame);
		return SOTTO_ERR_INVALID;
	}
	if (cfg->rate_burst < cfg->rate_limit) {
		config_err(err, errlen, "rate_burst: must be at least rate_limit (%u)",
		        cfg->rate_limit);
		return SOTTO_ERR_INVALID;
	}
	return 0;
}

void
config_write(const struct config *cfg, FILE *fp)
{
	static const char *const reg[] = {"?", "open", "invite", "closed"};
	static const char *const lvl[] = {"error", "warning", "info", "debug"};
	const struct config_key *k;
	size_t i, j;

	for (i = 0; i < CONFIG_NKEYS; i++) {
		k = &config_keys[i];
		switch (k->type) {
		case CONFIG_T_COUNT:
		case CONFIG_T_BYTES:
		case CONFIG_T_SECONDS:
			fprintf(fp, "%s = %u\n", k->name,
			        *(const uint32_t *)(const void *)((const char *)cfg + k->off));
			break;
		case CONFIG_T_BYTES64:
			fprintf(fp, "%s = %llu\n", k->name,
			        (unsigned long long)*(
			                const uint64_t *)(const void *)((const char *)cfg +
			                                                k->off));
			break;
		case CONFIG_T_PATH: {
			const char *s = *(char *const *)(const void *)((const char *)cfg + k->off);

			if (s != NULL)
				fprintf(fp, "%s = %s\n", k->name, s);
			break;
		}
		case CONFIG_T_LISTEN:
			for (j = 0; j < cfg->n_listen; j++) {
				const struct config_listen *l = &cfg->listen[j];

				if (strchr(l->host, ':') != NULL)
					fprintf(fp, "listen = [%s]:%s\n", l->host, l->port);
				else
					fprintf(fp, "listen = %s:%s\n", l->host, l->port);
			}
			break;
		case CONFIG_T_ADMINS:
			if (cfg->n_admins == 0)
				break;
			fprintf(fp, "admins = ");
			for (j = 0; j < cfg->n_admins; j++)
				fprintf(fp, "%s%s", j > 0 ? "," : "", cfg->admins[j]);
			fputc('\n', fp);
			break;
		case CONFIG_T_REGISTRATION:
			fprintf(fp, "registration = %s\n",
			        reg[cfg->registration <= CONFIG_REGISTRATION_CLOSED
			                        ? cfg->registration
			                        : 0]);
			break;
		case CONFIG_T_LOG_LEVEL:
			fprintf(fp, "log_level = %s\n",
			        lvl[cfg->log_level <= LOG_LEVEL_DEBUG ? cfg->log_level : 2]);
			break;
		case CONFIG_T_BOOL:
			fprintf(fp, "%s = %s\n", k->name,
			        *(const int *)(const void *)((const char *)cfg + k->off) ? "yes"
			                                                                 : "no");
			break;
		}
	}
}
