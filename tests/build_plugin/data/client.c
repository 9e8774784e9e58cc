/*
 * client.c - a FreeBSD-style kcov client, built WITHOUT coverage.
 *
 * It opens /dev/kcov (served by kcov-run), traces one call into the
 * instrumented fixture and prints what the buffer holds:
 *
 *	client pc   ->  "base 0x..", "target 0x..", "pc 0x.." lines
 *	client cmp  ->  "base 0x..", "cmp TYPE ARG1 ARG2 IP" lines
 *
 * The client itself is not instrumented, so every record must come from
 * pc_target.c or cmp_target.c.  The ioctl numbers are spelled out, as the
 * FreeBSD ABI defines them (_IOWINT/_IO in group 'c', ints by value), so the
 * fixture does not depend on the compat headers.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define KIOENABLE	0x20046302UL
#define KIODISABLE	0x20006303UL
#define KIOSETBUFSIZE	0x20046304UL
#define KCOV_MODE_TRACE_PC	0
#define KCOV_MODE_TRACE_CMP	1
#define ENTRIES		(1 << 14)

int pc_target(int n);
void cmp_run(void);

static void
die(const char *what)
{
	perror(what);
	exit(1);
}

/* The module's load base, found independently of the symbol under test. */
static uintptr_t
load_base(void *sym)
{
	Dl_info info;

	if (dladdr(sym, &info) == 0 || info.dli_fbase == NULL)
		die("dladdr");
	return (uintptr_t)info.dli_fbase;
}

int
main(int argc, char **argv)
{
	uint64_t *buf, n, i;
	int cmp, fd, r;

	if (argc < 2) {
		fprintf(stderr, "usage: client pc|cmp\n");
		return 64;
	}
	cmp = strcmp(argv[1], "cmp") == 0;
	fd = open("/dev/kcov", O_RDWR);
	if (fd == -1)
		die("open /dev/kcov");
	if (ioctl(fd, KIOSETBUFSIZE, ENTRIES) == -1)
		die("KIOSETBUFSIZE");
	buf = mmap(NULL, ENTRIES * sizeof(uint64_t), PROT_READ | PROT_WRITE,
	    MAP_SHARED, fd, 0);
	if (buf == MAP_FAILED)
		die("mmap");
	buf[0] = 0;
	if (ioctl(fd, KIOENABLE, cmp ? KCOV_MODE_TRACE_CMP : KCOV_MODE_TRACE_PC) == -1)
		die("KIOENABLE");
	if (cmp) {
		cmp_run();
		r = 0;
	} else
		r = pc_target(argc + 3);
	if (ioctl(fd, KIODISABLE, 0) == -1)
		die("KIODISABLE");
	n = __atomic_load_n(&buf[0], __ATOMIC_ACQUIRE);

	if (cmp) {
		printf("base 0x%" PRIxPTR "\n", load_base((void *)cmp_run));
		for (i = 0; i < n; i++) {
			uint64_t *rec = &buf[1 + 4 * i];

			printf("cmp %" PRIu64 " 0x%" PRIx64 " 0x%" PRIx64
			    " 0x%" PRIx64 "\n", rec[0], rec[1], rec[2], rec[3]);
		}
	} else {
		printf("base 0x%" PRIxPTR "\n", load_base((void *)pc_target));
		printf("target 0x%" PRIxPTR "\n", (uintptr_t)pc_target);
		printf("result %d\n", r);
		for (i = 0; i < n; i++)
			printf("pc 0x%" PRIx64 "\n", buf[1 + i]);
	}
	munmap(buf, ENTRIES * sizeof(uint64_t));
	close(fd);
	return 0;
}
