/*
 * Figures for sottod under load (make bench), not a pass/fail test.
 *
 * Starts the sottod built in this tree on 127.0.0.1 with a random port and a
 * fresh temporary state directory, registers users, and measures:
 *
 *   1. routing: msgs/s and server CPU seconds per million 256-byte envelopes
 *      over N sender->receiver pairs, closed loop with a window of Sends per
 *      sender: live (Ack + Deliver + DeliverAck + Delivered), live with the
 *      Delivered receipts acknowledged too, offline (Ack once durably queued)
 *      and the drain of that queue when the recipients log in;
 *   2. latency: p50/p99/p99.9 from Send to Deliver at a fixed offered rate
 *      over many connections (timestamps in the payload, monotonic clock),
 *      then the same pacing through a plain TCP relay (tcpfloor.h): the
 *      floor that the kernel and the machine set under those figures;
 *   3. server RSS per idle TLS connection (after Hello, then logged in);
 *   4. server CPU per full TLS 1.3 handshake, Ed25519 and ECDSA P-256
 *      certificates, and openssl s_server on the same machine for reference.
 *
 * Server CPU is utime + stime from /proc/PID/stat; RSS is VmRSS.  Each
 * figure is the median of several runs, with min and max.  Targets are
 * printed next to the figures and never fail the run.  Only loopback
 * addresses are used; every loop is bounded by a deadline.  See loadgen.h.
 */
#include "config.h"

#include <sys/resource.h>
#include <sys/time.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "crypto/util.h"
#include "tests/bench/loadgen.h"
#include "tests/bench/tcpfloor.h"

#define PAYLOAD_BYTES 256
#define MAX_RUNS      50
#define ACK_RING      1024 /* send times per connection, by request id */
#define LAT_CAP       64   /* outstanding Sends per connection in the paced test */
#define NSRC          40   /* source addresses 127.0.0.2 .. 127.0.0.41 */
#define HS_INFLIGHT   32   /* handshakes in flight */
#define SEC           1000000000LL

enum { TEST_LIVE = 1, TEST_OFFLINE = 2, TEST_LATENCY = 4, TEST_RSS = 8, TEST_HANDSHAKE = 16 };

static struct opts {
	int runs;
	int tests;
	int verbose;
	unsigned pairs;    /* routing */
	unsigned window;   /* Sends in flight per sender */
	unsigned messages; /* per routing run */
	unsigned lat_pairs;
	double rates[4]; /* offered msgs/s, one series each */
	size_t n_rates;
	unsigned lat_seconds; /* measured, after a warm-up */
	unsigned idle;        /* connections for the RSS test */
	unsigned rss_runs;
	unsigned handshakes;         /* per handshake run */
	const char *server_args[17]; /* extra sottod flags (--server-arg) */
	size_t n_server_args;
} O = {5, 31, 0, 100, 64, 30000, 500, {20000, 2000}, 2, 2, 10000, 2, 1000, {NULL}, 0};

/* One connection's part in a traffic test. */
struct peer {
	struct lconn c;
	const char *to; /* a sender's recipient */
	uint32_t idx;
	uint64_t quota, sent, acked;
	uint32_t outstanding;
	int64_t *send_ns;    /* ACK_RING send times (latency test) */
	struct lg_acks acks; /* to acknowledge after this read pass */
};

/* What the callbacks count. */
static struct {
	uint64_t reached, failed;
	uint64_t acked, errors, delivered, receipts, not_stored;
	uint32_t first_error;
	int ack_receipts; /* senders acknowledge Delivered receipts */
	int refill;       /* closed loop: a new Send for each Ack */
	uint64_t salt, next_msg;
	int64_t lat_from, lat_to; /* samples of Sends made in this window */
	int64_t *lat, *alat;      /* Send->Deliver and Send->Ack, ns */
	size_t nlat, nalat, caplat;
	uint8_t payload[PAYLOAD_BYTES];
} B;

static void
die_signal(int sig)
{
	static const char msg[] = "bench_server: interrupted; servers killed\n";

	bsrv_kill_all();
	(void)!write(2, msg, sizeof(msg) - 1);
	_exit(3);
}

static void
sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static double
secs_since(int64_t t0)
{
	return (double)(lg_now_ns() - t0) / 1e9;
}

/* ---- traffic ---------------------------------------------------------------------- */

static void
peer_send(struct peer *p, int64_t now)
{
	uint8_t id[PROTO_MSG_ID_BYTES], sealed[PAYLOAD_BYTES];
	uint64_t n = ++B.next_msg;
	Sotto__Frame f;
	Sotto__Send s;

	/* Unique across runs: the server remembers recent (sender, recipient, id). */
	memcpy(id, &n, 8);
	memcpy(id + 8, &B.salt, 8);
	memcpy(sealed, B.payload, sizeof(sealed));
	memcpy(sealed, &now, sizeof(now));
	sotto__send__init(&s);
	frame_init(&f, lg_next_id(&p->c));
	f.body_case = SOTTO__FRAME__BODY_SEND;
	f.send = &s;
	s.msg_id = proto_bytes(id, sizeof(id));
	s.to = proto_str(p->to);
	s.sealed = proto_bytes(sealed, sizeof(sealed));
	if (p->send_ns != NULL)
		p->send_ns[f.id % ACK_RING] = now;
	p->sent++;
	p->outstanding++;
	lg_send(&p->c, &f);
}

static void
lat_add(int64_t *v, size_t *n, int64_t sent, int64_t now)
{
	if (v != NULL && sent >= B.lat_from && sent < B.lat_to && *n < B.caplat)
		v[(*n)++] = now - sent;
}

static void
on_frame(struct lconn *c, const Sotto__Frame *f, int64_t now, void *arg)
{
	struct peer *p = c->app;
	int64_t ts;
	size_t i;

	switch (f->body_case) {
	case SOTTO__FRAME__BODY_ACK:
	case SOTTO__FRAME__BODY_ERROR:
		if (f->id == 0)
			break;
		if (f->body_case == SOTTO__FRAME__BODY_ERROR) {
			if (B.errors++ == 0)
				B.first_error = f->error->code;
		} else {
			B.acked++;
			if (!f->ack->stored)
				B.not_stored++;
		}
		p->acked++;
		if (p->outstanding > 0)
			p->outstanding--;
		if (p->send_ns != NULL)
			lat_add(B.alat, &B.nalat, p->send_ns[f->id % ACK_RING], now);
		if (B.refill && p->sent < p->quota)
			peer_send(p, now);
		break;
	case SOTTO__FRAME__BODY_DELIVER:
		B.delivered++;
		if (f->deliver->sealed.len >= sizeof(ts)) {
			memcpy(&ts, f->deliver->sealed.data, sizeof(ts));
			lat_add(B.lat, &B.nlat, ts, now);
		}
		lg_acks_add(&p->c, &p->acks, &f->deliver->msg_id);
		break;
	case SOTTO__FRAME__BODY_DELIVERED:
		B.receipts += f->delivered->n_receipts;
		for (i = 0; B.ack_receipts && i < f->delivered->n_receipts; i++)
			lg_acks_add(&p->c, &p->acks, &f->delivered->receipts[i]->msg_id);
		break;
	default:
		break;
	}
}

static void
on_read(struct lconn *c, void *arg)
{
	struct peer *p = c->app;

	lg_acks_flush(c, &p->acks);
}

static void
on_state(struct lconn *c, void *arg)
{
	if (c->state == LC_FAILED)
		B.failed++;
	else
		B.reached++;
}

static int
peers_alloc(struct peer **out, size_t n, int ring)
{
	struct peer *p;
	size_t i;

	if ((p = *out = calloc(n, sizeof(*p))) == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		p[i].idx = (uint32_t)i;
		if (lg_acks_init(&p[i].acks) != 0)
			return -1;
		if (ring && (p[i].send_ns = calloc(ACK_RING, sizeof(int64_t))) == NULL)
			return -1;
	}
	return 0;
}

static void
peers_free(struct peer *p, size_t n)
{
	size_t i;

	for (i = 0; p != NULL && i < n; i++) {
		lg_conn_free(&p[i].c);
		lg_acks_free(&p[i].acks);
		free(p[i].send_ns);
	}
	free(p);
}

/*
 * Open conns[first..first+n) towards goal, at most inflight at a time, until
 * each reached its goal or failed, or timeout_s passed.  The number that
 * reached it.
 */
static size_t
open_many(struct lg *lg, struct peer *ps, size_t first, size_t n, enum lg_goal goal,
        const struct lg_user *users, size_t inflight, double timeout_s)
{
	int64_t t0 = lg_now_ns();
	uint64_t base_r = B.reached, base_f = B.failed, done;
	size_t started = 0, i;

	for (;;) {
		done = (B.reached - base_r) + (B.failed - base_f);
		if (done >= n || secs_since(t0) > timeout_s)
			break;
		while (started < n && started - done < inflight) {
			i = first + started++;
			if (lg_connect(lg, &ps[i].c, goal, users != NULL ? &users[i] : NULL) == 0)
				ps[i].c.app = &ps[i];
		}
		if (lg_poll(lg, 20) < 0)
			break;
	}
	for (i = first; i < first + n; i++)
		ps[i].c.app = &ps[i];
	done = B.reached - base_r;
	if (done < n)
		fprintf(stderr, "bench_server: %zu of %zu connections did not get there%s%s\n",
		        n - (size_t)done, n, lg->err[0] ? "; first error: " : "", lg->err);
	return (size_t)done;
}

/* Poll until done() holds, the deadline passes, or a connection fails. */
static int
run_until(struct lg *lg, int (*done)(void *), void *arg, double timeout_s)
{
	int64_t t0 = lg_now_ns();
	size_t failed0 = lg->n_failed;

	while (!done(arg)) {
		if (secs_since(t0) > timeout_s || lg->n_failed != failed0)
			return -1;
		if (lg_poll(lg, 50) < 0)
			return -1;
	}
	return 0;
}

static void
counters_reset(void)
{
	B.acked = B.errors = B.delivered = B.receipts = B.not_stored = 0;
	B.first_error = 0;
}

static void
print_stat(
        const char *name, const char *unit, double *v, size_t n, int decimals, const char *target)
{
	struct bstat st;
	char a[32], b[32], c[32];

	bstat_of(&st, v, n);
	if (n == 0) {
		printf("  %-40s (no data)\n", name);
		return;
	}
	snprintf(a, sizeof(a), "%.*f", decimals, st.median);
	snprintf(b, sizeof(b), "%.*f", decimals, st.min);
	snprintf(c, sizeof(c), "%.*f", decimals, st.max);
	printf("  %-40s median %9s %-12s (min %s, max %s; %zu runs)%s%s\n", name, a, unit, b, c,
	        st.n, target != NULL ? "  target " : "", target != NULL ? target : "");
}

static const char *const server_flags[] = {"--max_conns_per_addr", "0", "--rate_limit", "1000000",
        "--rate_burst", "1000000", "--auth_throttle", "0", "--handshake_timeout", "300",
        "--auth_timeout", "3600", NULL};

static int
start_server(struct bsrv *s, const char *const *more)
{
	const char *argv[48];
	size_t n = 0, i;

	for (i = 0; server_flags[i] != NULL; i++)
		argv[n++] = server_flags[i];
	for (i = 0; i < O.n_server_args; i++)
		argv[n++] = O.server_args[i];
	for (i = 0; more != NULL && more[i] != NULL && n < 31; i++)
		argv[n++] = more[i];
	argv[n] = NULL;
	if (bsrv_start_sottod(s, argv) != 0)
		return -1;
	if (O.verbose)
		fprintf(stderr, "bench_server: sottod pid %ld port %u dir %s\n", (long)s->pid,
		        (unsigned)s->port, s->dir);
	return 0;
}

static struct lg_user *
users_new(const char *prefix, size_t n)
{
	struct lg_user *u = calloc(n, sizeof(*u));
	char name[PROTO_USERNAME_MAX + 1];
	size_t i;

	for (i = 0; u != NULL && i < n; i++) {
		snprintf(name, sizeof(name), "%s%zu", prefix, i);
		if (lg_user_new(&u[i], name) != 0) {
			fprintf(stderr, "bench_server: cannot make an identity\n");
			exit(2);
		}
	}
	return u;
}

static void
users_free(struct lg_user *u, size_t n)
{
	size_t i;

	for (i = 0; u != NULL && i < n; i++)
		lg_user_free(&u[i]);
	free(u);
}

/* ---- 1. routing throughput --------------------------------------------------------- */

struct route_ctx {
	struct peer *ps;
	size_t pairs;
	uint64_t total;
	int want; /* 1 acks, 2 deliveries and receipts, 3 both */
};

static int
route_done(void *arg)
{
	const struct route_ctx *r = arg;

	if ((r->want & 1) && B.acked + B.errors < r->total)
		return 0;
	if ((r->want & 2) && (B.delivered < r->total || B.receipts < r->total))
		return 0;
	return 1;
}

/* Start a closed-loop run: each sender gets its quota and fills its window. */
static void
route_start(struct route_ctx *r, uint64_t total)
{
	int64_t now = lg_now_ns();
	size_t i, w;

	r->total = total;
	for (i = 0; i < r->pairs; i++) {
		struct peer *p = &r->ps[i];

		p->quota = total / r->pairs + (i < total % r->pairs ? 1 : 0);
		p->sent = p->acked = 0;
		p->outstanding = 0;
		for (w = 0; w < O.window && p->sent < p->quota; w++)
			peer_send(p, now);
	}
}

static int
route_report_errors(const char *what)
{
	if (B.errors == 0 && B.not_stored == 0)
		return 0;
	fprintf(stderr, "bench_server: %s: %llu errors (first %s), %llu Acks with stored=0\n", what,
	        (unsigned long long)B.errors, proto_error_name(B.first_error),
	        (unsigned long long)B.not_stored);
	return -1;
}

/* Figures of one kind over the runs. */
struct series {
	double rate[MAX_RUNS]; /* msgs/s */
	double cpu[MAX_RUNS];  /* server CPU s per 1M envelopes */
	double gen[MAX_RUNS];  /* the generator's CPU s per 1M envelopes */
	size_t n;
};

struct meter {
	double c0, g0;
	int64_t t0;
};

static double
self_cpu_seconds(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0;
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void
meter_start(struct meter *m, const struct bsrv *s)
{
	m->c0 = proc_cpu_seconds(s->pid);
	m->g0 = self_cpu_seconds();
	m->t0 = lg_now_ns();
}

static void
meter_stop(const struct meter *m, const struct bsrv *s, uint64_t total, struct series *out)
{
	double secs = secs_since(m->t0), c1 = proc_cpu_seconds(s->pid), g1 = self_cpu_seconds();

	if (out->n >= MAX_RUNS)
		return;
	out->rate[out->n] = (double)total / secs;
	out->cpu[out->n] = (c1 - m->c0) / (double)total * 1e6;
	out->gen[out->n] = (g1 - m->g0) / (double)total * 1e6;
	out->n++;
}

static void
series_print(const char *title, struct series *sr, const char *target)
{
	if (sr->n == 0)
		return;
	printf(" %s\n", title);
	print_stat("throughput", "msgs/s", sr->rate, sr->n, 0, NULL);
	print_stat("server CPU per 1M envelopes", "s", sr->cpu, sr->n, 2, target);
	print_stat("(generator CPU per 1M envelopes)", "s", sr->gen, sr->n, 2, NULL);
}

/*
 * One closed-loop run against online recipients: every envelope is Acked,
 * delivered, acknowledged by DeliverAck and receipted.
 */
static int
route_live(struct lg *lg, const struct bsrv *s, struct route_ctx *r, uint64_t total,
        int ack_receipts, struct series *out)
{
	struct meter m;

	counters_reset();
	B.refill = 1;
	B.ack_receipts = ack_receipts;
	r->want = 3;
	meter_start(&m, s);
	route_start(r, total);
	if (run_until(lg, route_done, r, 120) != 0) {
		fprintf(stderr,
		        "bench_server: live run incomplete: %llu acked, %llu delivered, %llu "
		        "receipts of %llu%s%s\n",
		        (unsigned long long)B.acked, (unsigned long long)B.delivered,
		        (unsigned long long)B.receipts, (unsigned long long)total,
		        lg->err[0] ? "; " : "", lg->err);
		return -1;
	}
	meter_stop(&m, s, total, out);
	B.ack_receipts = 0;
	/* Let the last receipt acknowledgements reach the server before the next run. */
	sleep_ms(50);
	lg_poll(lg, 0);
	return route_report_errors("live");
}

/* Close the receivers, route total envelopes to them offline, then let them log in and drain. */
static int
route_offline(struct lg *lg, const struct bsrv *s, struct route_ctx *r, const struct lg_user *users,
        uint64_t total, struct series *off, struct series *drain)
{
	struct meter m;
	size_t i, ok;

	for (i = r->pairs; i < 2 * r->pairs; i++)
		lg_conn_free(&r->ps[i].c);
	/* Wait until the server has seen them go (it marks them offline). */
	sleep_ms(200);
	lg_poll(lg, 0);
	counters_reset();
	B.refill = 1;
	r->want = 1;
	meter_start(&m, s);
	route_start(r, total);
	if (run_until(lg, route_done, r, 120) != 0) {
		fprintf(stderr, "bench_server: offline run incomplete: %llu of %llu acked%s%s\n",
		        (unsigned long long)B.acked, (unsigned long long)total,
		        lg->err[0] ? "; " : "", lg->err);
		return -1;
	}
	meter_stop(&m, s, total, off);
	if (route_report_errors("offline") != 0)
		return -1;
	/* The drain: the recipients log in and the queue is pushed, acknowledged, receipted. */
	sleep_ms(50);
	lg_poll(lg, 0);
	counters_reset();
	B.refill = 0;
	r->want = 2;
	meter_start(&m, s);
	ok = open_many(lg, r->ps, r->pairs, r->pairs, LG_GOAL_LOGIN, users, r->pairs, 60);
	if (ok != r->pairs || run_until(lg, route_done, r, 120) != 0) {
		fprintf(stderr,
		        "bench_server: drain incomplete: %llu delivered, %llu receipts of "
		        "%llu%s%s\n",
		        (unsigned long long)B.delivered, (unsigned long long)B.receipts,
		        (unsigned long long)total, lg->err[0] ? "; " : "", lg->err);
		return -1;
	}
	meter_stop(&m, s, total, drain);
	sleep_ms(50);
	lg_poll(lg, 0);
	return 0;
}

static int
bench_routing(const struct bsrv *s)
{
	static struct series live, live_rc, off, drain, warm;
	size_t n = 2 * O.pairs, i;
	struct lg_user *users = users_new("t", n);
	struct route_ctx r;
	struct peer *ps = NULL;
	char err[256], title[160];
	struct lg lg;
	int run, ret = -1;

	lg_zero(&lg);
	if (users == NULL || peers_alloc(&ps, n, 0) != 0 ||
	        lg_init(&lg, s->port, NSRC, err, sizeof(err)) != 0) {
		fprintf(stderr, "bench_server: routing setup failed\n");
		goto out;
	}
	lg.on_frame = on_frame;
	lg.on_state = on_state;
	lg.on_read = on_read;
	for (i = 0; i < O.pairs; i++)
		ps[i].to = users[O.pairs + i].name;
	if (open_many(&lg, ps, 0, n, LG_GOAL_REGISTER, users, 64, 120) != n)
		goto out;
	memset(&r, 0, sizeof(r));
	r.ps = ps;
	r.pairs = O.pairs;
	printf("[1] routing 256-byte envelopes: %u sender->receiver pairs (%zu TLS connections), "
	       "window %u Sends per sender, %u envelopes per run\n",
	        O.pairs, n, O.window, O.messages);
	fflush(stdout);
	/* Warm-up: caches, hash tables and the recent-id ring. */
	if (route_live(&lg, s, &r, O.messages / 4 + 1, 0, &warm) != 0)
		goto out;
	for (run = 0; run < O.runs; run++) {
		if ((O.tests & TEST_LIVE) &&
		        (route_live(&lg, s, &r, O.messages, 0, &live) != 0 ||
		                route_live(&lg, s, &r, O.messages, 1, &live_rc) != 0))
			goto out;
		if ((O.tests & TEST_OFFLINE) &&
		        route_offline(&lg, s, &r, users, O.messages, &off, &drain) != 0)
			goto out;
		if (O.verbose)
			fprintf(stderr, "bench_server: routing run %d done\n", run + 1);
	}
	series_print("live: recipient online; Ack + Deliver + DeliverAck (notification) + "
	             "Delivered receipt",
	        &live, "<= 5 s");
	series_print("live, and the senders also DeliverAck their Delivered receipts", &live_rc,
	        "<= 5 s");
	series_print("offline: recipient logged out; Ack once durably queued (SQLite commit)", &off,
	        "<= 5 s");
	snprintf(title, sizeof(title),
	        "drain: the %u recipients log in; queue pushed + DeliverAck + receipts (includes "
	        "the logins)",
	        O.pairs);
	series_print(title, &drain, NULL);
	ret = 0;
out:
	fflush(stdout);
	peers_free(ps, n);
	lg_free(&lg);
	users_free(users, n);
	return ret;
}

/* ---- 2. latency at a fixed offered rate --------------------------------------------- */

struct lat_ctx {
	uint64_t sent;
};

static int
lat_done(void *arg)
{
	const struct lat_ctx *l = arg;

	return B.acked + B.errors >= l->sent && B.delivered >= l->sent;
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/*
 * The same pacing over as many loopback connections, through a plain TCP relay:
 * the part of the figures above that is the kernel's and the machine's.
 */
static int
floor_runs(double rate)
{
	struct tcpfloor_opts o = {O.lat_pairs, rate, 0.5, O.lat_seconds, 320, 64, LAT_CAP, 250};
	double p50[MAX_RUNS], p99[MAX_RUNS], p999[MAX_RUNS], relay[MAX_RUNS], gen[MAX_RUNS];
	struct tcpfloor_result r;
	char err[256];
	int run;

	for (run = 0; run < O.runs; run++) {
		if (tcpfloor_run(&o, &r, err, sizeof(err)) != 0) {
			fprintf(stderr, "bench_server: plain TCP floor: %s\n", err);
			return -1;
		}
		p50[run] = r.p50_us;
		p99[run] = r.p99_us;
		p999[run] = r.p999_us;
		relay[run] = r.relay_cpu;
		gen[run] = r.gen_cpu;
	}
	printf("  the floor: the same pacing through a plain TCP relay (no TLS, no framing; %zu "
	       "and %zu bytes a hop)\n",
	        o.msg_bytes, o.ack_bytes);
	print_stat("  relay CPU (share of one core)", "", relay, (size_t)O.runs, 2, NULL);
	print_stat("  (generator CPU, share of one core)", "", gen, (size_t)O.runs, 2, NULL);
	print_stat("  first two hops p50", "us", p50, (size_t)O.runs, 0, NULL);
	print_stat("  first two hops p99", "us", p99, (size_t)O.runs, 0, NULL);
	print_stat("  first two hops p99.9", "us", p999, (size_t)O.runs, 0, NULL);
	fflush(stdout);
	return 0;
}

/* Runs at one offered rate over the connections in ps; prints the figures. */
static int
latency_runs(struct lg *lg, const struct bsrv *s, struct peer *ps, double rate)
{
	enum { Q50, Q99, Q999, QMAX, NQ };
	static double q[2][NQ][MAX_RUNS];
	static const char *const qname[NQ] = {"p50", "p99", "p99.9", "max"};
	static const double qv[NQ] = {0.5, 0.99, 0.999, 1.0};
	double achieved[MAX_RUNS], cpu[MAX_RUNS], gen[MAX_RUNS], skip[MAX_RUNS], c0, g0;
	const double warm = 0.5;
	struct lat_ctx lc;
	uint64_t due, skipped;
	int64_t t0, now, end;
	size_t i, k, nr = 0;
	char name[96], target[96];
	int run, j;

	printf(" offered %.0f msgs/s\n", rate);
	fflush(stdout);
	for (run = 0; run < O.runs; run++) {
		counters_reset();
		B.nlat = B.nalat = 0;
		memset(&lc, 0, sizeof(lc));
		skipped = 0;
		t0 = lg_now_ns();
		B.lat_from = t0 + (int64_t)(warm * SEC);
		end = B.lat_to = B.lat_from + (int64_t)(O.lat_seconds * SEC);
		c0 = g0 = -1;
		for (i = 0; i < O.lat_pairs; i++)
			ps[i].outstanding = 0;
		while ((now = lg_now_ns()) < end) {
			if (c0 < 0 && now >= B.lat_from) {
				c0 = proc_cpu_seconds(s->pid);
				g0 = self_cpu_seconds();
			}
			due = (uint64_t)((double)(now - t0) * rate / 1e9);
			while (lc.sent + skipped < due) {
				struct peer *p = &ps[(lc.sent + skipped) % O.lat_pairs];

				if (p->outstanding >= LAT_CAP) {
					skipped++;
					continue;
				}
				peer_send(p, now);
				lc.sent++;
			}
			lg_flush_all(lg);
			if (lg_poll(lg, 5) < 0 || lg->n_failed > 0)
				break;
		}
		cpu[nr] = (proc_cpu_seconds(s->pid) - c0) / O.lat_seconds;
		gen[nr] = (self_cpu_seconds() - g0) / O.lat_seconds;
		if (lg->n_failed > 0 || run_until(lg, lat_done, &lc, 60) != 0) {
			fprintf(stderr,
			        "bench_server: latency run incomplete: %llu sent, %llu acked, "
			        "%llu delivered%s%s\n",
			        (unsigned long long)lc.sent, (unsigned long long)B.acked,
			        (unsigned long long)B.delivered, lg->err[0] ? "; " : "", lg->err);
			return -1;
		}
		route_report_errors("latency");
		skip[nr] = 100.0 * (double)skipped / (double)(skipped + lc.sent);
		qsort(B.lat, B.nlat, sizeof(int64_t), cmp_i64);
		qsort(B.alat, B.nalat, sizeof(int64_t), cmp_i64);
		for (k = 0; k < NQ; k++) {
			q[0][k][nr] = (double)bstat_quantile(B.lat, B.nlat, qv[k]) / 1000.0;
			q[1][k][nr] = (double)bstat_quantile(B.alat, B.nalat, qv[k]) / 1000.0;
		}
		achieved[nr] = (double)B.nlat / O.lat_seconds;
		nr++;
		/* Let the last receipts arrive before the next run. */
		sleep_ms(200);
		lg_poll(lg, 0);
	}
	print_stat("delivered (sent in the window)", "msgs/s", achieved, nr, 0, NULL);
	snprintf(name, sizeof(name), "not sent: %d already in flight", LAT_CAP);
	print_stat(name, "%", skip, nr, 1, NULL);
	print_stat("server CPU (share of one core)", "", cpu, nr, 2, NULL);
	print_stat("(generator CPU, share of one core)", "", gen, nr, 2, NULL);
	snprintf(target, sizeof(target), "<= 500 us at 20k msgs/s, 1000 conns");
	for (j = 0; j < 2; j++) {
		for (k = 0; k < NQ; k++) {
			snprintf(name, sizeof(name), "%s %s",
			        j == 0 ? "Send->Deliver" : "Send->Ack", qname[k]);
			print_stat(name, "us", q[j][k], nr, 0, j == 0 && k == Q99 ? target : NULL);
		}
	}
	fflush(stdout);
	return floor_runs(rate);
}

static int
bench_latency(const struct bsrv *s)
{
	size_t n = 2 * O.lat_pairs, i, r;
	struct lg_user *users = users_new("l", n);
	struct peer *ps = NULL;
	char err[256];
	struct lg lg;
	int ret = -1;
	double maxrate = 0;

	lg_zero(&lg);
	for (r = 0; r < O.n_rates; r++)
		maxrate = O.rates[r] > maxrate ? O.rates[r] : maxrate;
	B.caplat = (size_t)(maxrate * (O.lat_seconds + 1)) + 1024;
	if (users == NULL || peers_alloc(&ps, n, 1) != 0 ||
	        (B.lat = calloc(B.caplat, sizeof(int64_t))) == NULL ||
	        (B.alat = calloc(B.caplat, sizeof(int64_t))) == NULL ||
	        lg_init(&lg, s->port, NSRC, err, sizeof(err)) != 0 || lg_set_tick(&lg, 250) != 0) {
		fprintf(stderr, "bench_server: latency setup failed\n");
		goto out;
	}
	lg.on_frame = on_frame;
	lg.on_state = on_state;
	lg.on_read = on_read;
	for (i = 0; i < O.lat_pairs; i++)
		ps[i].to = users[O.lat_pairs + i].name;
	if (open_many(&lg, ps, 0, n, LG_GOAL_REGISTER, users, 64, 120) != n)
		goto out;
	printf("[2] latency, Send -> Deliver at the receiver (and Send -> Ack at the sender): "
	       "paced "
	       "every 250 us over %zu TLS connections (%u pairs), %u s measured per run after "
	       "0.5 s warm-up\n",
	        n, O.lat_pairs, O.lat_seconds);
	B.refill = 0;
	for (r = 0; r < O.n_rates; r++) {
		if (latency_runs(&lg, s, ps, O.rates[r]) != 0)
			goto out;
	}
	ret = 0;
out:
	fflush(stdout);
	peers_free(ps, n);
	lg_free(&lg);
	users_free(users, n);
	free(B.lat);
	free(B.alat);
	B.lat = B.alat = NULL;
	B.caplat = 0;
	return ret;
}

/* ---- 3. memory per idle connection ------------------------------------------------- */

struct login_ctx {
	uint64_t want;
	uint64_t base;
};

static int
login_done(void *arg)
{
	const struct login_ctx *l = arg;

	return B.reached + B.failed - l->base >= l->want;
}

/*
 * Every run starts a fresh sottod process on the same state directory, opens
 * n connections through TLS and Hello, then authenticates each of them: the
 * first run registers the users (RegisterUser logs in), later runs log them
 * in.  RSS is read at start, after Hello, and once authenticated.
 */
static int
bench_rss(void)
{
	double hello_b[MAX_RUNS], reg_b[MAX_RUNS], login_b[MAX_RUNS], base_kib[MAX_RUNS];
	size_t n = O.idle, i, nh = 0, nreg = 0, nlog = 0;
	struct lg_user *users = users_new("i", n);
	struct peer *ps = NULL;
	struct login_ctx lc;
	struct bsrv s;
	struct lg lg;
	char err[256];
	long r0, r1, r2;
	double c0, g0;
	int64_t t0;
	unsigned run;
	int ret = -1;

	memset(&s, 0, sizeof(s));
	lg_zero(&lg);
	if (users == NULL || peers_alloc(&ps, n, 0) != 0 || bsrv_init(&s) != 0) {
		fprintf(stderr, "bench_server: RSS setup failed\n");
		goto out;
	}
	printf("[3] server memory per idle TLS connection: %zu connections from 127.0.0.2-%d, "
	       "VmRSS after - before, divided by %zu\n",
	        n, 1 + NSRC, n);
	fflush(stdout);
	for (run = 0; run < O.rss_runs; run++) {
		t0 = lg_now_ns();
		if (start_server(&s, NULL) != 0 ||
		        lg_init(&lg, s.port, NSRC, err, sizeof(err)) != 0)
			goto out;
		lg.on_state = on_state;
		sleep_ms(300);
		r0 = proc_rss_kib(s.pid);
		c0 = proc_cpu_seconds(s.pid);
		g0 = self_cpu_seconds();
		if (open_many(&lg, ps, 0, n, LG_GOAL_HELLO, NULL, 256, 300) != n)
			goto out;
		if (O.verbose)
			fprintf(stderr,
			        "bench_server: %zu connections in %.1f s: server %.0f us, bench "
			        "%.0f us CPU each\n",
			        n, secs_since(t0), (proc_cpu_seconds(s.pid) - c0) * 1e6 / (double)n,
			        (self_cpu_seconds() - g0) * 1e6 / (double)n);
		sleep_ms(500);
		lg_poll(&lg, 0);
		r1 = proc_rss_kib(s.pid);
		lc.base = B.reached + B.failed;
		lc.want = n;
		for (i = 0; i < n; i++)
			lg_login(&ps[i].c, &users[i], run == 0);
		if (run_until(&lg, login_done, &lc, 300) != 0 || lg.n_failed > 0) {
			fprintf(stderr, "bench_server: %s failed: %s\n",
			        run == 0 ? "registrations" : "logins", lg.err);
			goto out;
		}
		sleep_ms(500);
		lg_poll(&lg, 0);
		r2 = proc_rss_kib(s.pid);
		base_kib[nh] = (double)r0;
		hello_b[nh++] = (double)(r1 - r0) * 1024.0 / (double)n;
		if (run == 0)
			reg_b[nreg++] = (double)(r2 - r0) * 1024.0 / (double)n;
		else
			login_b[nlog++] = (double)(r2 - r0) * 1024.0 / (double)n;
		if (O.verbose)
			fprintf(stderr,
			        "bench_server: RSS %ld -> %ld -> %ld KiB (run took %.1f s)\n", r0,
			        r1, r2, secs_since(t0));
		for (i = 0; i < n; i++)
			lg_conn_free(&ps[i].c);
		lg_free(&lg);
		bsrv_stop(&s);
	}
	print_stat("server RSS at start", "KiB", base_kib, nh, 0, NULL);
	print_stat("per connection, TLS + Hello", "bytes", hello_b, nh, 0, "<= 8192 bytes");
	print_stat("per connection, registered (RegisterUser)", "bytes", reg_b, nreg, 0,
	        "<= 8192 bytes");
	if (nlog > 0)
		print_stat("per connection, logged in (Login)", "bytes", login_b, nlog, 0,
		        "<= 8192 bytes");
	ret = 0;
out:
	fflush(stdout);
	peers_free(ps, n);
	lg_free(&lg);
	bsrv_cleanup(&s);
	users_free(users, n);
	return ret;
}

/* ---- 4. CPU per TLS handshake ----------------------------------------------------- */

/* Median server CPU per handshake in us over the runs (0 with v filled), or -1. */
static int
handshake_runs(struct bsrv *s, double *v, size_t *nv, double *rate)
{
	struct peer *ps = NULL;
	size_t k = O.handshakes, i;
	struct lg lg;
	char err[256];
	double c0, c1;
	int64_t t0;
	int run, ret = -1;

	*nv = 0;
	lg_zero(&lg);
	if (peers_alloc(&ps, k, 0) != 0 || lg_init(&lg, s->port, NSRC, err, sizeof(err)) != 0)
		goto out;
	lg.on_state = on_state;
	/* Warm-up, then the measured runs. */
	for (run = -1; run < O.runs; run++) {
		size_t want = run < 0 ? k / 10 + 1 : k;

		sleep_ms(100);
		c0 = proc_cpu_seconds(s->pid);
		t0 = lg_now_ns();
		if (open_many(&lg, ps, 0, want, LG_GOAL_TLS, NULL, HS_INFLIGHT, 120) != want)
			goto out;
		if (run >= 0)
			rate[run] = (double)want / secs_since(t0);
		/* The server reads the last Finished and close_notify after the client is done. */
		sleep_ms(200);
		c1 = proc_cpu_seconds(s->pid);
		for (i = 0; i < want; i++)
			lg_conn_free(&ps[i].c);
		if (run >= 0)
			v[(*nv)++] = (c1 - c0) / (double)want * 1e6;
	}
	ret = 0;
out:
	peers_free(ps, k);
	lg_free(&lg);
	return ret;
}

static int
bench_handshake(void)
{
	double v[MAX_RUNS], rate[MAX_RUNS], mine;
	char cert[400], key[400], base[300], name[128];
	struct bsrv s, o;
	struct bstat st;
	size_t nv;
	int ecdsa, ret = -1;

	memset(&o, 0, sizeof(o));
	if (bsrv_init(&s) != 0) {
		fprintf(stderr, "bench_server: cannot make a temporary directory\n");
		return -1;
	}
	printf("[4] server CPU per full TLS 1.3 handshake (X25519, no resumption, no tickets), "
	       "%u handshakes per run, %d in flight, then close_notify\n",
	        O.handshakes, HS_INFLIGHT);
	fflush(stdout);
	for (ecdsa = 0; ecdsa < 2; ecdsa++) {
		if (ecdsa) {
			const char *kg[] = {bsrv_program("sotto-keygen"), "-q", "-t", "tls",
			        "--ecdsa", "--san", "localhost", "-f", base, NULL};
			const char *more[] = {"--cert", cert, "--key", key, NULL};

			snprintf(base, sizeof(base), "%s/ecdsa", s.dir);
			snprintf(cert, sizeof(cert), "%s.crt", base);
			snprintf(key, sizeof(key), "%s.key", base);
			if (bsrv_run(&s, kg) != 0) {
				fprintf(stderr,
				        "bench_server: sotto-keygen --ecdsa failed (see %s)\n",
				        s.log);
				goto out;
			}
			if (start_server(&s, more) != 0)
				goto out;
		} else {
			if (start_server(&s, NULL) != 0)
				goto out;
			snprintf(cert, sizeof(cert), "%s/server.crt", s.state);
			snprintf(key, sizeof(key), "%s/server.key", s.state);
		}
		if (handshake_runs(&s, v, &nv, rate) != 0)
			goto out;
		snprintf(name, sizeof(name), "sottod, %s certificate",
		        ecdsa ? "ECDSA P-256" : "Ed25519");
		print_stat(name, "us CPU", v, nv, 0, "< ~210 us");
		bstat_of(&st, v, nv);
		mine = st.median;
		print_stat("  (handshakes per second, whole machine)", "/s", rate, nv, 0, NULL);
		fflush(stdout);
		bsrv_stop(&s);
		/* The same certificate behind openssl s_server, for reference. */
		if (bsrv_init(&o) != 0 || bsrv_start_openssl(&o, cert, key) != 0) {
			printf("  (openssl s_server not available; skipped)\n");
			bsrv_cleanup(&o);
			continue;
		}
		if (handshake_runs(&o, v, &nv, rate) == 0) {
			snprintf(name, sizeof(name), "openssl s_server, %s",
			        ecdsa ? "ECDSA P-256" : "Ed25519");
			print_stat(name, "us CPU", v, nv, 0, NULL);
			bstat_of(&st, v, nv);
			/* The target quotes OpenSSL's usual 210-225 us: compare on this machine. */
			if (st.median > 0)
				printf("  sottod / s_server %.2f: %.0f us where s_server takes 217 "
				       "us\n",
				        mine / st.median, 217.0 * mine / st.median);
		}
		bsrv_cleanup(&o);
		fflush(stdout);
	}
	ret = 0;
out:
	fflush(stdout);
	bsrv_cleanup(&o);
	bsrv_cleanup(&s);
	return ret;
}

/* ---- main ----------------------------------------------------------------------------- */

/* The machine is shared: show how busy it was, next to the figures. */
static void
section_end(int64_t t0)
{
	char line[128] = "?";
	FILE *fp = fopen("/proc/loadavg", "r");

	if (fp != NULL) {
		if (fgets(line, sizeof(line), fp) == NULL)
			snprintf(line, sizeof(line), "?");
		fclose(fp);
	}
	line[strcspn(line, "\n")] = '\0';
	printf("  (took %.0f s; load average now %s)\n", secs_since(t0), line);
	fflush(stdout);
}

static void
usage(void)
{
	fprintf(stderr,
	        "usage: bench_server [-v] [--runs N] [--only live,offline,latency,rss,handshake]\n"
	        "         [--pairs N] [--window N] [--messages N] [--rate MSGS_PER_S]...\n"
	        "         [--lat-pairs N] [--lat-seconds S] [--idle N] [--rss-runs N]\n"
	        "         [--handshakes N] [--server-arg SOTTOD_ARG]... [--quick]\n");
	exit(2);
}

static unsigned
arg_u(const char *s, unsigned lo, unsigned hi)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < lo || v > hi)
		usage();
	return (unsigned)v;
}

static void
parse_only(const char *s)
{
	static const char *const names[] = {"live", "offline", "latency", "rss", "handshake"};
	char *copy = strdup(s), *tok, *save = NULL;
	size_t i;

	if (copy == NULL)
		exit(2);
	O.tests = 0;
	for (tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			if (strcmp(tok, names[i]) == 0)
				break;
		}
		if (i == sizeof(names) / sizeof(names[0]))
			usage();
		O.tests |= 1 << i;
	}
	free(copy);
}

int
main(int argc, char **argv)
{
	struct sigaction sa;
	struct rlimit rl;
	struct bsrv s;
	int i, ret = 0, rate_set = 0;
	int64_t t0 = lg_now_ns(), t1;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "-v") == 0) {
			O.verbose = 1;
			continue;
		}
		if (strcmp(a, "--quick") == 0) {
			O.runs = 3;
			O.messages = 20000;
			O.idle = 2000;
			O.handshakes = 500;
			O.lat_seconds = 1;
			O.n_rates = 1;
			continue;
		}
		if (v == NULL)
			usage();
		i++;
		if (strcmp(a, "--runs") == 0)
			O.runs = (int)arg_u(v, 1, MAX_RUNS);
		else if (strcmp(a, "--only") == 0)
			parse_only(v);
		else if (strcmp(a, "--pairs") == 0)
			O.pairs = arg_u(v, 1, 5000);
		else if (strcmp(a, "--window") == 0)
			O.window = arg_u(v, 1, 1000);
		else if (strcmp(a, "--messages") == 0)
			O.messages = arg_u(v, 1000, 100000000);
		else if (strcmp(a, "--rate") == 0) {
			if (!rate_set)
				O.n_rates = 0;
			rate_set = 1;
			if (O.n_rates < sizeof(O.rates) / sizeof(O.rates[0]))
				O.rates[O.n_rates++] = arg_u(v, 100, 10000000);
		} else if (strcmp(a, "--lat-pairs") == 0)
			O.lat_pairs = arg_u(v, 1, 5000);
		else if (strcmp(a, "--lat-seconds") == 0)
			O.lat_seconds = arg_u(v, 1, 600);
		else if (strcmp(a, "--idle") == 0)
			O.idle = arg_u(v, 10, 100000);
		else if (strcmp(a, "--rss-runs") == 0)
			O.rss_runs = arg_u(v, 2, MAX_RUNS);
		else if (strcmp(a, "--handshakes") == 0)
			O.handshakes = arg_u(v, 10, 1000000);
		else if (strcmp(a, "--server-arg") == 0 && O.n_server_args < 16)
			O.server_args[O.n_server_args++] = v;
		else
			usage();
	}
	if (sotto_crypto_init() != 0) {
		fprintf(stderr, "bench_server: crypto initialisation failed\n");
		return 2;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = die_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	/* Everything stops by itself: a hard bound on the whole program. */
	alarm(1200);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)O.idle + 256) {
		fprintf(stderr, "bench_server: RLIMIT_NOFILE %llu: fewer idle connections\n",
		        (unsigned long long)rl.rlim_cur);
		O.idle = rl.rlim_cur > 1256 ? (unsigned)(rl.rlim_cur - 256) : 1000;
	}
	sotto_random(B.payload, sizeof(B.payload));
	sotto_random(&B.salt, sizeof(B.salt));
	printf("== sottod under load: %s on 127.0.0.1, %ld CPUs; medians over runs ==\n",
	        bsrv_program("sottod"), sysconf(_SC_NPROCESSORS_ONLN));
	fflush(stdout);
	if (O.tests & (TEST_LIVE | TEST_OFFLINE | TEST_LATENCY)) {
		if (bsrv_init(&s) != 0 || start_server(&s, NULL) != 0) {
			fprintf(stderr, "bench_server: cannot start sottod\n");
			bsrv_cleanup(&s);
			return 1;
		}
		if (O.tests & (TEST_LIVE | TEST_OFFLINE)) {
			t1 = lg_now_ns();
			if (bench_routing(&s) != 0)
				ret = 1;
			section_end(t1);
		}
		if (O.tests & TEST_LATENCY) {
			t1 = lg_now_ns();
			if (bench_latency(&s) != 0)
				ret = 1;
			section_end(t1);
		}
		bsrv_cleanup(&s);
	}
	if (O.tests & TEST_RSS) {
		t1 = lg_now_ns();
		if (bench_rss() != 0)
			ret = 1;
		section_end(t1);
	}
	if (O.tests & TEST_HANDSHAKE) {
		t1 = lg_now_ns();
		if (bench_handshake() != 0)
			ret = 1;
		section_end(t1);
	}
	printf("(bench_server took %.0f s)\n", secs_since(t0));
	return ret;
}
