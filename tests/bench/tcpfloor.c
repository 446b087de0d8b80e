/* The latency test's floor: paced traffic through a plain TCP relay; see tcpfloor.h. */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/wait.h>

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/bench/loadgen.h"
#include "tests/bench/tcpfloor.h"

#define RING      64 /* send times per pair; opts.cap is at most this */
#define IO_BYTES  65536
#define EVENTS    256
#define DRAIN_SEC 10

struct fpair {
	int fd[2];    /* [0] the sender's connection, [1] the receiver's */
	size_t rx[2]; /* bytes of an incomplete message or ack */
	int64_t sent_ns[RING];
	unsigned head, tail; /* send times not yet delivered: [head, tail) */
	unsigned outstanding;
};

static void
fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static int
write_all(int fd, const uint8_t *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
read_all(int fd, uint8_t *p, size_t n)
{
	ssize_t r;

	while (n > 0) {
		r = read(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/*
 * The relay: accepts 2 * pairs connections, each of which names its slot in its
 * first 4 bytes, then moves what one connection of a pair sends to the other
 * until the generator closes.  Never returns.
 */
static void
relay(int ls, size_t pairs)
{
	size_t n = 2 * pairs, i, got;
	struct epoll_event ev[EVENTS], e;
	int *fd = calloc(n, sizeof(int)), ep, k, j, one = 1;
	uint8_t *buf = malloc(IO_BYTES), idx[4];
	uint32_t slot;
	ssize_t r;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (fd == NULL || buf == NULL || (ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
		_exit(2);
	for (got = 0; got < n; got++) {
		int c = accept(ls, NULL, NULL);

		if (c < 0 || read_all(c, idx, sizeof(idx)) != 0)
			_exit(2);
		slot = (uint32_t)idx[0] << 24 | (uint32_t)idx[1] << 16 | (uint32_t)idx[2] << 8 |
		       idx[3];
		if (slot >= n || fd[slot] != 0)
			_exit(2);
		setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		fd[slot] = c;
		memset(&e, 0, sizeof(e));
		e.events = EPOLLIN;
		e.data.u32 = slot;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &e) != 0)
			_exit(2);
	}
	close(ls);
	for (;;) {
		k = epoll_wait(ep, ev, EVENTS, -1);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			_exit(2);
		for (j = 0; j < k; j++) {
			i = ev[j].data.u32;
			r = read(fd[i], buf, IO_BYTES);
			if (r <= 0)
				_exit(0);
			if (write_all(fd[i ^ 1], buf, (size_t)r) != 0)
				_exit(0);
		}
	}
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static double
quantile_us(const int64_t *v, size_t n, double q)
{
	size_t i;

	if (n == 0)
		return 0;
	i = (size_t)(q * (double)(n - 1) + 0.5);
	return (double)v[i < n ? i : n - 1] / 1000.0;
}

static double
self_cpu(void)
{
	struct rusage u;

	getrusage(RUSAGE_SELF, &u);
	return (double)u.ru_utime.tv_sec + (double)u.ru_stime.tv_sec +
	       ((double)u.ru_utime.tv_usec + (double)u.ru_stime.tv_usec) / 1e6;
}

/* A message arrived at p's receiver: its latency, and the ack goes back. */
static int
on_receiver(struct fpair *p, size_t nbytes, const struct tcpfloor_opts *o, int64_t now,
        int64_t from, int64_t to, int64_t *lat, size_t *nlat, size_t cap, const uint8_t *ack)
{
	size_t k = 0;
	int64_t t;

	p->rx[1] += nbytes;
	while (p->rx[1] >= o->msg_bytes) {
		p->rx[1] -= o->msg_bytes;
		if (p->head == p->tail)
			return -1; /* more than was sent: the relay is broken */
		t = p->sent_ns[p->head++ % RING];
		if (t >= from && t < to && *nlat < cap)
			lat[(*nlat)++] = now - t;
		k++;
	}
	/* One write for what this read brought, as a client acknowledges per pass. */
	return k == 0 ? 0 : write_all(p->fd[1], ack, k * o->ack_bytes);
}

int
tcpfloor_run(const struct tcpfloor_opts *o, struct tcpfloor_result *r, char *err, size_t errlen)
{
	size_t n = 2 * o->pairs, i, nlat = 0, cap = 0;
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	struct epoll_event ev[EVENTS], e;
	struct itimerspec its;
	struct fpair *ps = NULL;
	struct rlimit rl;
	uint8_t *buf = NULL, *msg = NULL, *ack = NULL, idx[4];
	int64_t *lat = NULL, t0, from, to, now, end;
	uint64_t sent = 0, skipped = 0, due, ticks;
	double c0 = -1, g0 = 0, rc = 0, gc = 0;
	int ls = -1, ep = -1, tfd = -1, ret = -1, one = 1, measured = 0, k, j;
	pid_t pid = -1;

	memset(r, 0, sizeof(*r));
	if (o->pairs == 0 || o->cap == 0 || o->cap > RING || o->msg_bytes == 0 ||
	        o->ack_bytes == 0 || o->msg_bytes > IO_BYTES || o->ack_bytes > IO_BYTES) {
		fail(err, errlen, "bad options");
		return -1;
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 2 * n + 64) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	cap = (size_t)(o->rate * (o->seconds + 1)) + 1024;
	ps = calloc(o->pairs, sizeof(*ps));
	lat = calloc(cap, sizeof(*lat));
	buf = malloc(IO_BYTES);
	msg = calloc(1, o->msg_bytes);
	ack = calloc(RING, o->ack_bytes); /* up to RING acks in one write */
	if (ps == NULL || lat == NULL || buf == NULL || msg == NULL || ack == NULL) {
		fail(err, errlen, "out of memory");
		goto out;
	}
	for (i = 0; i < o->pairs; i++)
		ps[i].fd[0] = ps[i].fd[1] = -1;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	        bind(ls, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(ls, 4096) != 0 ||
	        getsockname(ls, (struct sockaddr *)&a, &alen) != 0) {
		fail(err, errlen, "relay socket: %s", strerror(errno));
		goto out;
	}
	fflush(NULL);
	if ((pid = fork()) < 0) {
		fail(err, errlen, "fork: %s", strerror(errno));
		goto out;
	}
	if (pid == 0)
		relay(ls, o->pairs);
	close(ls);
	ls = -1;
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	        (tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)) < 0) {
		fail(err, errlen, "epoll: %s", strerror(errno));
		goto out;
	}
	for (i = 0; i < n; i++) {
		int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		uint32_t slot = (uint32_t)i;

		if (c < 0) {
			fail(err, errlen, "socket: %s", strerror(errno));
			goto out;
		}
		ps[i / 2].fd[i % 2] = c;
		idx[0] = (uint8_t)(slot >> 24);
		idx[1] = (uint8_t)(slot >> 16);
		idx[2] = (uint8_t)(slot >> 8);
		idx[3] = (uint8_t)slot;
		setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		memset(&e, 0, sizeof(e));
		e.events = EPOLLIN;
		e.data.u64 = i + 1;
		if (connect(c, (struct sockaddr *)&a, sizeof(a)) != 0 ||
		        write_all(c, idx, sizeof(idx)) != 0 ||
		        epoll_ctl(ep, EPOLL_CTL_ADD, c, &e) != 0) {
			fail(err, errlen, "connection %zu to the relay: %s", i, strerror(errno));
			goto out;
		}
	}
	memset(&e, 0, sizeof(e));
	e.events = EPOLLIN;
	e.data.u64 = 0;
	memset(&its, 0, sizeof(its));
	its.it_interval.tv_nsec = its.it_value.tv_nsec = o->tick_us * 1000;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &e) != 0 ||
	        timerfd_settime(tfd, 0, &its, NULL) != 0) {
		fail(err, errlen, "timer: %s", strerror(errno));
		goto out;
	}
	t0 = lg_now_ns();
	from = t0 + (int64_t)(o->warm_s * 1e9);
	to = from + (int64_t)(o->seconds * 1e9);
	end = to + (int64_t)DRAIN_SEC * 1000000000LL;
	for (;;) {
		uint64_t done = 0;

		now = lg_now_ns();
		if (c0 < 0 && now >= from) {
			c0 = proc_cpu_seconds(pid);
			g0 = self_cpu();
		}
		if (now < to) {
			due = (uint64_t)((double)(now - t0) * o->rate / 1e9);
			while (sent + skipped < due) {
				struct fpair *p = &ps[(sent + skipped) % o->pairs];

				if (p->outstanding >= o->cap) {
					skipped++;
					continue;
				}
				if (write_all(p->fd[0], msg, o->msg_bytes) != 0) {
					fail(err, errlen, "relay closed: %s", strerror(errno));
					goto out;
				}
				p->sent_ns[p->tail++ % RING] = now;
				p->outstanding++;
				sent++;
			}
		} else {
			if (!measured) {
				rc = proc_cpu_seconds(pid) - c0;
				gc = self_cpu() - g0;
				measured = 1;
			}
			for (i = 0; i < o->pairs; i++)
				done += ps[i].outstanding == 0;
			if (done == o->pairs)
				break;
			if (now >= end) {
				fail(err, errlen, "messages still in flight %d s after the run",
				        DRAIN_SEC);
				goto out;
			}
		}
		k = epoll_wait(ep, ev, EVENTS, 5);
		if (k < 0 && errno != EINTR) {
			fail(err, errlen, "epoll_wait: %s", strerror(errno));
			goto out;
		}
		now = lg_now_ns();
		for (j = 0; j < k; j++) {
			uint64_t id = ev[j].data.u64;
			struct fpair *p;
			ssize_t got;
			int side;

			if (id == 0) {
				while (read(tfd, &ticks, sizeof(ticks)) == (ssize_t)sizeof(ticks))
					;
				continue;
			}
			p = &ps[(id - 1) / 2];
			side = (int)((id - 1) % 2);
			if ((got = read(p->fd[side], buf, IO_BYTES)) <= 0) {
				fail(err, errlen, "the relay went away");
				goto out;
			}
			if (side == 1) {
				if (on_receiver(p, (size_t)got, o, now, from, to, lat, &nlat, cap,
				            ack) != 0) {
					fail(err, errlen, "the relay mixed up its connections");
					goto out;
				}
				continue;
			}
			p->rx[0] += (size_t)got;
			while (p->rx[0] >= o->ack_bytes && p->outstanding > 0) {
				p->rx[0] -= o->ack_bytes;
				p->outstanding--;
			}
		}
	}
	qsort(lat, nlat, sizeof(*lat), cmp_i64);
	r->delivered = (double)nlat / o->seconds;
	r->relay_cpu = rc / o->seconds;
	r->gen_cpu = gc / o->seconds;
	r->p50_us = quantile_us(lat, nlat, 0.5);
	r->p99_us = quantile_us(lat, nlat, 0.99);
	r->p999_us = quantile_us(lat, nlat, 0.999);
	r->max_us = quantile_us(lat, nlat, 1.0);
	ret = 0;
out:
	if (ps != NULL) {
		for (i = 0; i < o->pairs; i++) {
			if (ps[i].fd[0] >= 0)
				close(ps[i].fd[0]);
			if (ps[i].fd[1] >= 0)
				close(ps[i].fd[1]);
		}
	}
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	if (ls >= 0)
		close(ls);
	if (ep >= 0)
		close(ep);
	if (tfd >= 0)
		close(tfd);
	free(ps);
	free(lat);
	free(buf);
	free(msg);
	free(ack);
	return ret;
}
