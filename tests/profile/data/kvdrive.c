/*
 * kvdrive.c - a user of examples/kvdev (libkvdev.so): one "syscall" per
 * argument, so that each test run takes its own path through the driver.
 *
 *   put:KEY=VAL  get:KEY  del:KEY  count  clear  bad (an unknown command)
 *
 * It is instrumented too, so a run's profile holds two images (this
 * program and the library), written back to back into one file.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KVIOC_PUT   0x40046b01u
#define KVIOC_GET   0x80046b02u
#define KVIOC_DEL   0x40046b03u
#define KVIOC_COUNT 0x80046b04u
#define KVIOC_CLEAR 0x20006b05u

int kvdev_ioctl(unsigned int cmd, const char *key, uint32_t *val);

static int
one(const char *arg)
{
	char key[64];
	uint32_t val = 0;
	const char *eq;

	if (strncmp(arg, "put:", 4) == 0 && (eq = strchr(arg, '=')) != NULL) {
		snprintf(key, sizeof(key), "%.*s", (int)(eq - arg - 4), arg + 4);
		val = (uint32_t)strtoul(eq + 1, NULL, 0);
		return kvdev_ioctl(KVIOC_PUT, key, &val);
	}
	if (strncmp(arg, "get:", 4) == 0) {
		int rc = kvdev_ioctl(KVIOC_GET, arg + 4, &val);
		return rc == 0 ? (int)val : rc;
	}
	if (strncmp(arg, "del:", 4) == 0)
		return kvdev_ioctl(KVIOC_DEL, arg + 4, NULL);
	if (strcmp(arg, "count") == 0) {
		int rc = kvdev_ioctl(KVIOC_COUNT, NULL, &val);
		return rc == 0 ? (int)val : rc;
	}
	if (strcmp(arg, "clear") == 0)
		return kvdev_ioctl(KVIOC_CLEAR, NULL, NULL);
	return kvdev_ioctl(0x1234, NULL, NULL);
}

int
main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		printf("%s -> %d\n", argv[i], one(argv[i]));
	return 0;
}
