/*
 * A program that uses the runtime's C API in-process (no kcov-run): it opens
 * a hosted descriptor, sizes, maps and enables it, calls instrumented code
 * and prints the number of PCs recorded.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>

#include "kcovrt.h"

int target(int);

int
main(void)
{
	uint64_t *buf;
	int fd;

	fd = kcovrt_open(O_CLOEXEC, KCOVRT_ABI_FREEBSD);
	if (fd < 0 || kcovrt_ioctl(fd, 0x20046304UL, 512) != 0)
		return 2;
	buf = kcovrt_mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (buf == MAP_FAILED || kcovrt_ioctl(fd, 0x20046302UL, 0) != 0)
		return 3;
	buf[0] = 0;
	target(5);
	printf("pcs %llu\n", (unsigned long long)buf[0]);
	return kcovrt_ioctl(fd, 0x20006303UL, 0) == 0 && kcovrt_close(fd) == 0 ? 0 : 4;
}
