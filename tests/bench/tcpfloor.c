/* The latency test's floor: paced traffic through a plain TCP relay; see tcpfloor.h. */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/mman.h>
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

/* All n bytes through fd, writing or reading: 0, or -1 at an error or the end of the stream. */
static int
io_all(int fd, uint8_t *p, size_t n, int writing)
{
	ssize_t k;

	while (n > 0) {
		k = writing ? write(fd, p, n) : read(fd, p, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

static int
write_all(int fd, const uint8_t *p, size_t n)
{
	return io_all(fd, (uint8_t *)(uintptr_t)p, n, 1);
}

/* Accept n connections, each naming its slot in its first 4 bytes, into fd[] and ep. */
static int
relay_accept(int ls, size_t n, int ep, int *fd)
{
	struct epoll_event e;
	uint8_t idx[4];
	uint32_t slot;
	size_t got;
	int c, one = 1;

	for (got = 0; got < n; got++) {
		if ((c = accept(ls, NULL, NULL)) < 0 || io_all(c, idx, sizeof(idx), 0) != 0)
			return -1;
		slot = (uint32_t)idx[0] << 24 | (uint32_t)idx[1] << 16 | (uint32_t)idx[2] << 8 |
		       idx[3];
		if (slot >= n || fd[slot] != 0)
			return -1;
		setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		fd[slot] = c;
		memset(&e, 0, sizeof(e));
		e.events = EPOLLIN;
		e.data.u32 = slot;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &e) != 0)
			return -1;
	}
	close(ls);
	return 0;
}

/* In the relay: die with the generator, and take its n connections; the epoll fd or -1. */
static int
relay_start(int ls, size_t n, int *fd)
{
	int ep;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0 || relay_accept(ls, n, ep, fd) != 0)
		return -1;
	return ep;
}

/* The next events (at least one); the relay ends if it cannot wait. */
static int
relay_wait(int ep, struct epoll_event *ev)
{
	int k;

	while ((k = epoll_wait(ep, ev, EVENTS, -1)) < 0) {
		if (errno != EINTR)
			_exit(2);
	}
	return k;
}

/*
 * The pair relay: moves what one connection of a pair sends to the other
 * until the generator closes.  Never returns.
 */
static void
relay_pairs(int ls, size_t pairs)
{
	size_t n = 2 * pairs, i;
	struct epoll_event ev[EVENTS];
	int *fd = calloc(n, sizeof(int)), ep, k, j;
	uint8_t *buf = malloc(IO_BYTES);
	ssize_t r;

	if (fd == NULL || buf == NULL || (ep = relay_start(ls, n, fd)) < 0)
		_exit(2);
	for (;;) {
		k = relay_wait(ep, ev);
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

/*
 * The fan-out relay: slot 0 is the sender, slots 1..members the members.  What
 * the sender writes goes to every member, one write each per read; once every
 * member has acked a message, the sender gets its ack, one write per pass.
 * Counts its writes to members in *writes.  Never returns.
 */
static void
relay_fanout(int ls, const struct tcpfanout_opts *o, volatile uint64_t *writes)
{
	size_t n = o->members + 1, i;
	struct epoll_event ev[EVENTS];
	int *fd = calloc(n, sizeof(int)), ep, k, j;
	uint64_t *acked = calloc(n, sizeof(uint64_t)), *rx = calloc(n, sizeof(uint64_t)), all,
	         answered = 0;
	uint8_t *buf = malloc(IO_BYTES), *ack = calloc(o->window, o->ack_bytes);
	ssize_t r;

	if (fd == NULL || acked == NULL || rx == NULL || buf == NULL || ack == NULL ||
	        (ep = relay_start(ls, n, fd)) < 0)
		_exit(2);
	for (;;) {
		k = relay_wait(ep, ev);
		for (j = 0; j < k; j++) {
			i = ev[j].data.u32;
			if ((r = read(fd[i], buf, IO_BYTES)) <= 0)
				_exit(0);
			if (i == 0) {
				for (i = 1; i < n; i++) {
					if (write_all(fd[i], buf, (size_t)r) != 0)
						_exit(0);
					(*writes)++;
				}
				continue;
			}
			rx[i] += (uint64_t)r;
			acked[i] = rx[i] / o->ack_bytes;
		}
		for (i = 1, all = UINT64_MAX; i < n; i++)
			all = acked[i] < all ? acked[i] : all;
		if (all > answered) {
			if (write_all(fd[0], ack, (size_t)(all - answered) * o->ack_bytes) != 0)
				_exit(0);
			answered = all;
		}
	}
}

/* A connection to the relay at a for slot, in ep with data.u64 = tag; -1 on failure. */
static int
relay_connect(const struct sockaddr_in *a, uint32_t slot, int ep, uint64_t tag)
{
	struct epoll_event e;
	uint8_t idx[4] = {
	        (uint8_t)(slot >> 24), (uint8_t)(slot >> 16), (uint8_t)(slot >> 8), (uint8_t)slot};
	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (c < 0)
		return -1;
	setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	memset(&e, 0, sizeof(e));
	e.events = EPOLLIN;
	e.data.u64 = tag;
	if (connect(c, (const struct sockaddr *)a, sizeof(*a)) != 0 ||
	        write_all(c, idx, sizeof(idx)) != 0 || epoll_ctl(ep, EPOLL_CTL_ADD, c, &e) != 0) {
		close(c);
		return -1;
	}
	return c;
}

/* A listening socket on 127.0.0.1 with a free port, its address in a; -1 on failure. */
static int
relay_listen(struct sockaddr_in *a)
{
	socklen_t alen = sizeof(*a);
	int ls;

	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	if (bind(ls, (struct sockaddr *)a, sizeof(*a)) != 0 || listen(ls, 4096) != 0 ||
	        getsockname(ls, (struct sockaddr *)a, &alen) != 0) {
		close(ls);
		return -1;
	}
	return ls;
}

/*
 * Listen on a free port (its address in a) and fork: the child gets 0 and the
 * socket in *ls; the parent gets the child's pid, its own copy closed, or -1.
 */
static pid_t
relay_fork(struct sockaddr_in *a, int *ls, char *err, size_t errlen)
{
	pid_t pid;

	if ((*ls = relay_listen(a)) < 0) {
		fail(err, errlen, "relay socket: %s", strerror(errno));
		return -1;
	}
	fflush(NULL);
	if ((pid = fork()) < 0)
		fail(err, errlen, "fork: %s", strerror(errno));
	if (pid != 0) {
		close(*ls);
		*ls = -1;
	}
	return pid;
}

/* The generator's end of a run: the relay killed and reaped, its sockets closed. */
static void
relay_stop(pid_t pid, int ls, int ep)
{
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	if (ls >= 0)
		close(ls);
	if (ep >= 0)
		close(ep);
}

static void
raise_fd_limit(size_t want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
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
	struct epoll_event ev[EVENTS], e;
	struct itimerspec its;
	struct fpair *ps = NULL;
	uint8_t *buf = NULL, *msg = NULL, *ack = NULL;
	int64_t *lat = NULL, t0, from, to, now, end;
	uint64_t sent = 0, skipped = 0, due, ticks;
	double c0 = -1, g0 = 0, rc = 0, gc = 0;
	int ls = -1, ep = -1, tfd = -1, ret = -1, measured = 0, k, j;
	pid_t pid = -1;

	memset(r, 0, sizeof(*r));
	if (o->pairs == 0 || o->cap == 0 || o->cap > RING || o->msg_bytes == 0 ||
	        o->ack_bytes == 0 || o->msg_bytes > IO_BYTES || o->ack_bytes > IO_BYTES) {
		fail(err, errlen, "bad options");
		return -1;
	}
	raise_fd_limit(2 * n + 64);
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
	if ((pid = relay_fork(&a, &ls, err, errlen)) < 0)
		goto out;
	if (pid == 0)
		relay_pairs(ls, o->pairs);
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	        (tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)) < 0) {
		fail(err, errlen, "epoll: %s", strerror(errno));
		goto out;
	}
	for (i = 0; i < n; i++) {
		if ((ps[i / 2].fd[i % 2] = relay_connect(&a, (uint32_t)i, ep, i + 1)) < 0) {
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
	relay_stop(pid, ls, ep);
	if (tfd >= 0)
		close(tfd);
	free(ps);
	free(lat);
	free(buf);
	free(msg);
	free(ack);
	return ret;
}

int
tcpfloor_fanout(
        const struct tcpfanout_opts *o, struct tcpfanout_result *r, char *err, size_t errlen)
{
	size_t n = o->members + 1, i;
	struct sockaddr_in a;
	struct epoll_event ev[EVENTS];
	void *map = MAP_FAILED;
	volatile uint64_t *writes = NULL;
	uint64_t sent = 0, acked = 0, delivered = 0, *rx = NULL, w0 = 0, burst;
	uint8_t *buf = NULL, *msgs = NULL, *acks = NULL;
	int *fd = NULL, ls = -1, ep = -1, ret = -1, k, j;
	double c0 = 0, g0 = 0, secs;
	int64_t t0, deadline;
	pid_t pid = -1;

	memset(r, 0, sizeof(*r));
	if (o->members == 0 || o->window == 0 || o->messages == 0 || o->msg_bytes == 0 ||
	        o->ack_bytes == 0 || (uint64_t)o->window * o->msg_bytes > IO_BYTES ||
	        o->msg_bytes > IO_BYTES) {
		fail(err, errlen, "bad options");
		return -1;
	}
	raise_fd_limit(2 * n + 64);
	fd = calloc(n, sizeof(int));
	rx = calloc(n, sizeof(uint64_t));
	buf = malloc(IO_BYTES);
	msgs = calloc(o->window, o->msg_bytes);
	acks = calloc(IO_BYTES / o->msg_bytes + 1, o->ack_bytes);
	writes = mmap(
	        NULL, sizeof(*writes), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (fd == NULL || rx == NULL || buf == NULL || msgs == NULL || acks == NULL ||
	        writes == NULL) {
		fail(err, errlen, "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++)
		fd[i] = -1;
	if ((pid = relay_fork(&a, &ls, err, errlen)) < 0)
		goto out;
	if (pid == 0)
		relay_fanout(ls, o, writes);
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0) {
		fail(err, errlen, "epoll: %s", strerror(errno));
		goto out;
	}
	for (i = 0; i < n; i++) {
		if ((fd[i] = relay_connect(&a, (uint32_t)i, ep, i)) < 0) {
			fail(err, errlen, "connection %zu to the relay: %s", i, strerror(errno));
			goto out;
		}
	}
	c0 = proc_cpu_seconds(pid);
	g0 = self_cpu();
	w0 = *writes;
	t0 = lg_now_ns();
	deadline = t0 + 300 * 1000000000LL;
	while (acked < o->messages || delivered < o->messages * o->members) {
		/* The sender tops its window up, in one write. */
		burst = o->window - (sent - acked);
		if (burst > o->messages - sent)
			burst = o->messages - sent;
		if (burst > 0) {
			if (write_all(fd[0], msgs, (size_t)burst * o->msg_bytes) != 0) {
				fail(err, errlen, "the relay went away");
				goto out;
			}
			sent += burst;
		}
		if (lg_now_ns() > deadline) {
			fail(err, errlen, "run incomplete after 300 s");
			goto out;
		}
		k = epoll_wait(ep, ev, EVENTS, 1000);
		if (k < 0 && errno != EINTR) {
			fail(err, errlen, "epoll_wait: %s", strerror(errno));
			goto out;
		}
		for (j = 0; j < k; j++) {
			uint64_t before, got_msgs;
			ssize_t got;

			i = (size_t)ev[j].data.u64;
			if ((got = read(fd[i], buf, IO_BYTES)) <= 0) {
				fail(err, errlen, "the relay went away");
				goto out;
			}
			if (i == 0) {
				rx[0] += (uint64_t)got;
				acked = rx[0] / o->ack_bytes;
				continue;
			}
			/* A member: what this read completed is acked in one write. */
			before = rx[i] / o->msg_bytes;
			rx[i] += (uint64_t)got;
			got_msgs = rx[i] / o->msg_bytes - before;
			delivered += got_msgs;
			if (got_msgs > 0 &&
			        write_all(fd[i], acks, (size_t)got_msgs * o->ack_bytes) != 0) {
				fail(err, errlen, "the relay went away");
				goto out;
			}
		}
	}
	secs = (double)(lg_now_ns() - t0) / 1e9;
	r->deliveries = (double)delivered / secs;
	r->relay_us = (proc_cpu_seconds(pid) - c0) / (double)delivered * 1e6;
	r->gen_us = (self_cpu() - g0) / (double)delivered * 1e6;
	r->writes = (double)(*writes - w0) / (double)delivered;
	ret = 0;
out:
	for (i = 0; fd != NULL && i < n; i++) {
		if (fd[i] >= 0)
			close(fd[i]);
	}
	relay_stop(pid, ls, ep);
	if (map != MAP_FAILED)
		munmap(map, sizeof(uint64_t));
	free(fd);
	free(rx);
	free(buf);
	free(msgs);
	free(acks);
	return ret;
}
