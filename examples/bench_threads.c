/* Thread scaling of one shared mcrs_client.
   usage: bench_threads HOST PORT OPS_PER_THREAD THREADS [WORKLOAD [VALUE_SIZE]]
   workloads: mget100 (mcrs_client_get_many of 100 keys; OPS_PER_THREAD counts
   keys, so each thread does OPS_PER_THREAD/100 rounds) and get (plain get);
   default: both, in that order.
   THREADS threads share ONE mcrs_client (its pool hands each thread its own
   connection). The keys bench:key:0..999 are stored first, so every read hits.
   Prints one line per workload on stdout:
     threads=N get ops_per_second
     threads=N mget100_keys keys_per_second
   and one diagnostic line per workload on stderr, measured over the timed
   phase only:
     # threads=N WORKLOAD wall_s=.. client_cpu_s=.. (user+sys of this process)
       vcsw=.. ivcsw=.. client_rq_wait_s=.. client_migrations=..
       [server_cpu_s=.. server_rq_wait_s=.. server_migrations=..]
       [spin_cpu_s=..] machine_busy_pct=.. ops=..
       start_real=.. end_real=.. (CLOCK_REALTIME, to combine several processes)
   server_cpu_s is printed when MCRS_BENCH_SERVER_PID names the memcached
   process (its utime+stime from /proc/PID/stat; its threads' run-queue
   wait and CPU migrations from /proc/PID/task/TID/schedstat and sched: time
   it was runnable but had no CPU), spin_cpu_s likewise for
   MCRS_BENCH_SPIN_PID (bench.sh's busy loop); machine_busy_pct comes from
   /proc/stat (100% = every core busy).
   MCRS_BENCH_START_AT=UNIX_SECONDS (CLOCK_REALTIME, may have decimals) makes
   the program wait after its warm-up until that time, so that several
   processes started together time the same interval (bench.sh uses it for
   its two-process control run). */
#define _GNU_SOURCE
#include "mcrs.h"
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static void die(const char *what, mcrs_status st) {
  char detail[256];
  mcrs_last_error(detail, sizeof detail);
  fprintf(stderr, "%s: %s (%s)\n", what, mcrs_status_str(st), detail);
  exit(1);
}

static mcrs_client *mc;
static long ops_per_thread;
static size_t vsz = 100;
static const char *workload;
static pthread_barrier_t start_line;
static const uint8_t *mkeys[100];
static size_t mklens[100];

/* From a /proc .../schedstat file: the time spent waiting on a run queue
   for a CPU (ns); from .../sched: the number of migrations between CPUs. */
static long long rq_wait_ns(const char *path) {
  long long run = 0, wait = 0;
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  if (fscanf(f, "%lld %lld", &run, &wait) != 2) wait = 0;
  fclose(f);
  return wait;
}
static long long migrations(const char *path) {
  char line[256];
  long long n = 0;
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, "se.nr_migrations", 16)) {
      char *c = strchr(line, ':');
      if (c) n = atoll(c + 1);
    }
  fclose(f);
  return n;
}
/* the same, summed over every thread of a process */
static void proc_sched(const char *pid, long long *wait, long long *migr) {
  char path[512];
  *wait = *migr = 0;
  snprintf(path, sizeof path, "/proc/%s/task", pid);
  DIR *d = opendir(path);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "/proc/%s/task/%s/schedstat", pid, e->d_name);
    *wait += rq_wait_ns(path);
    snprintf(path, sizeof path, "/proc/%s/task/%s/sched", pid, e->d_name);
    *migr += migrations(path);
  }
  closedir(d);
}
static long long client_wait_ns, client_migr; /* summed by the workers */

static void *worker(void *arg) {
  long id = (long)arg;
  char key[64];
  long hits = 0;
  pthread_barrier_wait(&start_line);
  long long w0 = rq_wait_ns("/proc/thread-self/schedstat"), m0 = migrations("/proc/thread-self/sched");
  if (!strcmp(workload, "get")) {
    for (long i = 0; i < ops_per_thread; i++) {
      int kl = snprintf(key, sizeof key, "bench:key:%ld", (i + id * 500) % 1000);
      mcrs_value *v;
      mcrs_status st = mcrs_client_get(mc, (const uint8_t *)key, (size_t)kl, &v);
      if (st != MCRS_STATUS_OK || mcrs_value_len(v) != vsz) die("get miss", st);
      mcrs_value_free(v);
      hits++;
    }
  } else {
    long rounds = ops_per_thread / 100;
    for (long r = 0; r < rounds; r++) {
      mcrs_values *vs;
      mcrs_status st = mcrs_client_get_many(mc, mkeys, mklens, 100, &vs);
      if (st != MCRS_STATUS_OK) die("get_many", st);
      for (size_t j = 0; j < mcrs_values_len(vs); j++)
        if (mcrs_values_get(vs, j)) hits++;
      mcrs_values_free(vs);
    }
    if (hits != rounds * 100) {
      fprintf(stderr, "get_many: %ld hits of %ld\n", hits, rounds * 100);
      exit(1);
    }
  }
  __atomic_add_fetch(&client_wait_ns, rq_wait_ns("/proc/thread-self/schedstat") - w0, __ATOMIC_SEQ_CST);
  __atomic_add_fetch(&client_migr, migrations("/proc/thread-self/sched") - m0, __ATOMIC_SEQ_CST);
  return (void *)hits;
}

/* utime+stime of a process in seconds, -1 when unreadable */
static double proc_cpu(const char *pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%s/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *p = strrchr(buf, ')'); /* comm may contain spaces */
  if (!p) return -1;
  unsigned long ut = 0, stime = 0;
  /* after ") ": state(3) ... utime is field 14, stime 15 */
  if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &stime) != 2) return -1;
  return (double)(ut + stime) / sysconf(_SC_CLK_TCK);
}

/* busy and total jiffies of the whole machine */
static void machine_cpu(double *busy, double *total) {
  unsigned long long v[10] = {0};
  FILE *f = fopen("/proc/stat", "r");
  *busy = *total = 0;
  if (!f) return;
  if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
             &v[5], &v[6], &v[7], &v[8], &v[9]) >= 8) {
    /* user nice system idle iowait irq softirq steal (guest counted in user) */
    double t = 0;
    for (int i = 0; i < 8; i++) t += (double)v[i];
    *total = t;
    *busy = t - (double)v[3] - (double)v[4];
  }
  fclose(f);
}

static double tv(struct timeval t) { return t.tv_sec + t.tv_usec / 1e6; }

static void run(int threads, int report) {
  pthread_t tid[256];
  const char *spid = getenv("MCRS_BENCH_SERVER_PID");
  const char *ppid = getenv("MCRS_BENCH_SPIN_PID");
  double p0 = -1, p1 = -1;
  long long sw0 = 0, sm0 = 0, sw1 = 0, sm1 = 0;
  client_wait_ns = client_migr = 0;
  struct rusage r0, r1;
  double mb0, mt0, mb1, mt1, s0 = -1, s1 = -1;
  pthread_barrier_init(&start_line, NULL, (unsigned)threads + 1);
  for (long t = 0; t < threads; t++)
    if (pthread_create(&tid[t], NULL, worker, (void *)t)) {
      perror("pthread_create");
      exit(1);
    }
  if (spid) s0 = proc_cpu(spid);
  if (spid) proc_sched(spid, &sw0, &sm0);
  if (ppid) p0 = proc_cpu(ppid);
  machine_cpu(&mb0, &mt0);
  getrusage(RUSAGE_SELF, &r0);
  struct timespec rt0, rt1;
  clock_gettime(CLOCK_REALTIME, &rt0);
  double t0 = now();
  pthread_barrier_wait(&start_line);
  long total = 0;
  for (int t = 0; t < threads; t++) {
    void *h;
    pthread_join(tid[t], &h);
    total += (long)h;
  }
  double t1 = now();
  clock_gettime(CLOCK_REALTIME, &rt1);
  getrusage(RUSAGE_SELF, &r1);
  machine_cpu(&mb1, &mt1);
  if (spid) s1 = proc_cpu(spid);
  if (spid) proc_sched(spid, &sw1, &sm1);
  if (ppid) p1 = proc_cpu(ppid);
  pthread_barrier_destroy(&start_line);
  if (!report) return;
  const char *name = strcmp(workload, "get") ? "mget100_keys" : "get";
  printf("threads=%d %s %.0f\n", threads, name, total / (t1 - t0));
  fflush(stdout);
  double cpu = tv(r1.ru_utime) - tv(r0.ru_utime) + tv(r1.ru_stime) - tv(r0.ru_stime);
  fprintf(stderr, "# threads=%d %s wall_s=%.3f client_cpu_s=%.3f vcsw=%ld ivcsw=%ld", threads, workload, t1 - t0,
          cpu, r1.ru_nvcsw - r0.ru_nvcsw, r1.ru_nivcsw - r0.ru_nivcsw);
  fprintf(stderr, " client_rq_wait_s=%.3f client_migrations=%lld", client_wait_ns / 1e9, client_migr);
  if (s0 >= 0 && s1 >= 0)
    fprintf(stderr, " server_cpu_s=%.3f server_rq_wait_s=%.3f server_migrations=%lld", s1 - s0, (sw1 - sw0) / 1e9,
            sm1 - sm0);
  if (p0 >= 0 && p1 >= 0) fprintf(stderr, " spin_cpu_s=%.3f", p1 - p0);
  if (mt1 > mt0) fprintf(stderr, " machine_busy_pct=%.1f", 100.0 * (mb1 - mb0) / (mt1 - mt0));
  fprintf(stderr, " ops=%ld start_real=%.6f end_real=%.6f\n", total, rt0.tv_sec + rt0.tv_nsec / 1e9,
          rt1.tv_sec + rt1.tv_nsec / 1e9);
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: %s HOST PORT OPS_PER_THREAD THREADS [get|mget100 [VALUE_SIZE]]\n", argv[0]);
    return 2;
  }
  const char *host = argv[1];
  int port = atoi(argv[2]);
  ops_per_thread = atol(argv[3]);
  int threads = atoi(argv[4]);
  const char *only = argc > 5 ? argv[5] : NULL;
  if (argc > 6) vsz = (size_t)atol(argv[6]);
  if (threads < 1 || threads > 256 || ops_per_thread < 100) {
    fprintf(stderr, "THREADS must be 1..256 and OPS_PER_THREAD >= 100\n");
    return 2;
  }
  char addr[300];
  snprintf(addr, sizeof addr, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
  mcrs_config *cfg = mcrs_config_new();
  mcrs_status st = mcrs_config_add_server(cfg, addr);
  if (st != MCRS_STATUS_OK) die("add_server", st);
  mcrs_config_set_no_delay(cfg, true);
  st = mcrs_client_new(cfg, &mc);
  if (st != MCRS_STATUS_OK) die("client_new", st);
  mcrs_config_free(cfg);

  /* store the keys every read will hit */
  uint8_t *val = malloc(vsz);
  memset(val, 'v', vsz);
  char key[64];
  for (int i = 0; i < 1000; i++) {
    int kl = snprintf(key, sizeof key, "bench:key:%d", i);
    st = mcrs_client_set(mc, (const uint8_t *)key, (size_t)kl, val, vsz, 0, 0, MCRS_NOREPLY_OFF);
    if (st != MCRS_STATUS_OK) die("set", st);
  }
  static char kb[100][32];
  for (int j = 0; j < 100; j++) {
    mklens[j] = (size_t)snprintf(kb[j], 32, "bench:key:%d", j);
    mkeys[j] = (const uint8_t *)kb[j];
  }
  /* untimed warm-up with all threads, so the pool holds one connection per
     thread before the clock starts */
  long want = ops_per_thread;
  ops_per_thread = 1000;
  workload = "get";
  run(threads, 0);
  ops_per_thread = want;
  const char *start_at = getenv("MCRS_BENCH_START_AT");
  if (start_at) {
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    double wait = atof(start_at) - (rt.tv_sec + rt.tv_nsec / 1e9);
    if (wait > 0) {
      struct timespec d = {(time_t)wait, (long)((wait - (time_t)wait) * 1e9)};
      nanosleep(&d, NULL);
    }
  }
  if (!only || !strcmp(only, "mget100")) {
    workload = "mget100";
    run(threads, 1);
  }
  if (!only || !strcmp(only, "get")) {
    workload = "get";
    run(threads, 1);
  }
  if (only && strcmp(only, "mget100") && strcmp(only, "get")) {
    fprintf(stderr, "unknown workload %s (get, mget100)\n", only);
    return 2;
  }
  mcrs_client_free(mc);
  free(val);
  return 0;
}
