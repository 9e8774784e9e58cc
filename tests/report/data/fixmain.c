/*
 * fixmain.c - the report fixture's kcov client, built WITHOUT coverage.
 *
 *	fixprog KIND ARG MAPS   (run under kcov-run)
 *
 * Traces prog_run(KIND, ARG) through /dev/kcov (FreeBSD ABI, served by
 * kcov-run), copies /proc/self/maps to MAPS and prints one recorded PC per
 * line ("0x..."), as kcov recorded them.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fixture.h"

#define KIOENABLE	0x20046302UL
#define KIODISABLE	0x20006303UL
#define KIOSETBUFSIZE	0x20046304UL
#define KCOV_MODE_TRACE_PC	0
#define ENTRIES		(1 << 16)

static void
die(const char *what)
{
	perror(what);
	exit(1);
}

static void
copy_maps(const char *out)
{
	char buf[4096];
	ssize_t n;
	int in, fd;

	in = open("/proc/self/maps", O_RDONLY);
	fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (in == -1 || fd == -1)
		die("maps");
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(fd, buf, (size_t)n) != n)
			die("write maps");
	close(in);
	close(fd);
}

int
main(int argc, char **argv)
{
	uint64_t *cover, n, i;
	int fd;

	if (argc != 4) {
		fprintf(stderr, "usage: fixprog digits|letters ARG MAPS\n");
		return 64;
	}
	fd = open("/dev/kcov", O_RDWR);
	if (fd == -1)
		die("open /dev/kcov");
	if (ioctl(fd, KIOSETBUFSIZE, ENTRIES) == -1)
		die("KIOSETBUFSIZE");
	cover = mmap(NULL, ENTRIES * sizeof(uint64_t), PROT_READ | PROT_WRITE,
	    MAP_SHARED, fd, 0);
	if (cover == MAP_FAILED)
		die("mmap");
	cover[0] = 0;
	if (ioctl(fd, KIOENABLE, KCOV_MODE_TRACE_PC) == -1)
		die("KIOENABLE");
	(void)prog_run(argv[1], argv[2]);
	if (ioctl(fd, KIODISABLE, 0) == -1)
		die("KIODISABLE");
	copy_maps(argv[3]);
	n = cover[0];
	for (i = 0; i < n; i++)
		printf("0x%" PRIx64 "\n", cover[i + 1]);
	return 0;
}
