// SPDX-License-Identifier: GPL-2.0
/*
 * workload.c - the anchor's guest workload (benchmarks/kmod_anchor.py).
 *
 * Runs the same on both anchor kernels: opens /sys/kernel/debug/kcov (the
 * in-tree kcov on one kernel, kcov.ko's Linux personality on the other),
 * sizes and maps its buffer, and times batches of writes of one fixed text
 * to /dev/kcovbench in three modes:
 *
 *   null  the same write to /dev/null: a system call with no instrumented
 *         code, the baseline of the two kernels themselves
 *   off   the descriptor exists but this task does not trace: the
 *         callbacks' early return
 *   pc    KCOV_ENABLE(KCOV_TRACE_PC)
 *   cmp   KCOV_ENABLE(KCOV_TRACE_CMP)
 *
 * Before each write the record count (area[0]) is reset, as syzkaller does
 * per call, so every write records the same number of entries.  Each
 * repetition times one batch per mode (the order of the modes rotates
 * between repetitions, so slow drifts of the host are shared).
 *
 * Each write is timed on its own (clock_gettime(CLOCK_MONOTONIC) before and
 * after) and a batch's figure is the median of its writes.  Under qemu TCG
 * on a loaded host the vCPU thread is descheduled now and then, and guest
 * time runs on meanwhile: timing a whole batch would charge every such gap
 * to the batch, while per write it lands on the few writes it interrupted,
 * which the median ignores.  The cost of the clock reads themselves (the
 * median of back-to-back pairs) is measured and subtracted.
 *
 * Output: one JSON object with the per-batch ns/op figures, their medians,
 * the records of one write per mode, and the module's answer for the text.
 *
 * Usage: workload [-n OPS_PER_BATCH] [-r REPS] [-w WARMUP] [-k KCOV] [-d DEV]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kcov.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define COVER_WORDS (1UL << 18)
#define MAX_REPS 1000

enum { M_NULL, M_OFF, M_PC, M_CMP, NMODES };
static const char *const mode_name[NMODES] = { "null", "off", "pc", "cmp" };

/* The text the module parses: numbers, keywords, other words, punctuation. */
static const char payload[] =
	"open size=0x1000, map(3); write 12345 enable_trace -1\n"
	"read 7 close 0 disable; x=0xdeadbeef y=42 zz_top=1000000 (a,b,c)\n"
	"size 64; map 4096 PROT_READ; mprotect ro; fork 8 exit 0 -- done 99\n"
	"enable disable enable 0x7f 0X10 word_with_digits123 a1b2c3; end\n";

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double
median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void
die(const char *what)
{
	fprintf(stderr, "workload: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void
one_write(int dev, volatile unsigned long *area)
{
	area[0] = 0;
	if (write(dev, payload, sizeof(payload) - 1) != (ssize_t)(sizeof(payload) - 1))
		die("write");
}

static void
set_mode(int kcov, int mode)
{
	if (mode == M_NULL || mode == M_OFF)
		return;
	if (ioctl(kcov, KCOV_ENABLE, mode == M_PC ? KCOV_TRACE_PC : KCOV_TRACE_CMP) != 0)
		die("KCOV_ENABLE");
}

static void
clear_mode(int kcov, int mode)
{
	if (mode != M_NULL && mode != M_OFF && ioctl(kcov, KCOV_DISABLE, 0) != 0)
		die("KCOV_DISABLE");
}

int
main(int argc, char **argv)
{
	const char *kcov_path = "/sys/kernel/debug/kcov", *dev_path = "/dev/kcovbench";
	int ops = 200, reps = 15, warmup = 50, opt, r, m, i;
	static double samples[NMODES][MAX_REPS];
	unsigned long records[NMODES] = { 0 };
	volatile unsigned long *area;
	char answer[64] = "";
	double *per_op, clock_ns;
	int kcov, dev, null, fd;
	ssize_t got;

	while ((opt = getopt(argc, argv, "n:r:w:k:d:")) != -1) {
		switch (opt) {
		case 'n': ops = atoi(optarg); break;
		case 'r': reps = atoi(optarg); break;
		case 'w': warmup = atoi(optarg); break;
		case 'k': kcov_path = optarg; break;
		case 'd': dev_path = optarg; break;
		default:
			fprintf(stderr, "usage: %s [-n OPS] [-r REPS] [-w WARMUP] [-k KCOV] [-d DEV]\n", argv[0]);
			return 64;
		}
	}
	if (ops < 1 || reps < 1 || reps > MAX_REPS || warmup < 0) {
		fprintf(stderr, "workload: need 1 <= OPS, 1 <= REPS <= %d, 0 <= WARMUP\n", MAX_REPS);
		return 64;
	}
	kcov = open(kcov_path, O_RDWR);
	if (kcov < 0)
		die(kcov_path);
	if (ioctl(kcov, KCOV_INIT_TRACE, COVER_WORDS) != 0)
		die("KCOV_INIT_TRACE");
	area = mmap(NULL, COVER_WORDS * sizeof(unsigned long), PROT_READ | PROT_WRITE,
		    MAP_SHARED, kcov, 0);
	if (area == MAP_FAILED)
		die("mmap");
	dev = open(dev_path, O_RDWR);
	if (dev < 0)
		die(dev_path);
	null = open("/dev/null", O_WRONLY);
	if (null < 0)
		die("/dev/null");

	/* Warm up each mode, and take the records of one write per mode. */
	for (m = 0; m < NMODES; m++) {
		fd = m == M_NULL ? null : dev;
		set_mode(kcov, m);
		for (i = 0; i < warmup; i++)
			one_write(fd, area);
		one_write(fd, area);
		records[m] = area[0];
		clear_mode(kcov, m);
	}
	got = pread(dev, answer, sizeof(answer) - 1, 0);
	if (got < 0)
		die("read");
	answer[got] = '\0';
	answer[strcspn(answer, "\n")] = '\0';

	per_op = calloc((size_t)ops, sizeof(*per_op));
	if (per_op == NULL)
		die("calloc");
	for (i = 0; i < ops; i++) {
		double t0 = now_ns();

		per_op[i] = now_ns() - t0;
	}
	clock_ns = median(per_op, ops);

	for (r = 0; r < reps; r++) {
		for (int k = 0; k < NMODES; k++) {
			m = (r + k) % NMODES;
			fd = m == M_NULL ? null : dev;
			set_mode(kcov, m);
			for (i = 0; i < ops; i++) {
				double t0;

				area[0] = 0;
				t0 = now_ns();
				if (write(fd, payload, sizeof(payload) - 1) != (ssize_t)(sizeof(payload) - 1))
					die("write");
				per_op[i] = now_ns() - t0;
			}
			if (m >= M_PC && area[0] == 0) {
				fprintf(stderr, "workload: mode %s recorded nothing\n", mode_name[m]);
				return 1;
			}
			clear_mode(kcov, m);
			samples[m][r] = median(per_op, ops) - clock_ns;
		}
	}

	printf("{\"kcov\": \"%s\", \"payload_bytes\": %zu, \"ops\": %d, \"reps\": %d, "
	       "\"answer\": \"%s\", \"clock_ns\": %.1f, \"records\": {", kcov_path, sizeof(payload) - 1, ops, reps, answer,
	       clock_ns);
	for (m = 0; m < NMODES; m++)
		printf("%s\"%s\": %lu", m ? ", " : "", mode_name[m], records[m]);
	printf("}, \"samples_ns\": {");
	for (m = 0; m < NMODES; m++) {
		printf("%s\"%s\": [", m ? ", " : "", mode_name[m]);
		for (r = 0; r < reps; r++)
			printf("%s%.1f", r ? ", " : "", samples[m][r]);
		printf("]");
	}
	printf("}, \"median_ns\": {");
	for (m = 0; m < NMODES; m++)
		printf("%s\"%s\": %.1f", m ? ", " : "", mode_name[m], median(samples[m], reps));
	printf("}}\n");
	return 0;
}
