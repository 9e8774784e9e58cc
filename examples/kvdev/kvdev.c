/*
 * kvdev.c - a small kernel-style driver: a key/value store behind an ioctl
 * dispatcher, written the way a character-device driver is (negative errno
 * returns, a command switch, bounds checks, a fixed table, no libc beyond
 * string helpers).  It is the demo's code under test: built instrumented by
 * kcov-build and driven from Python, one "syscall" at a time.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define EINVAL 22
#define ENOENT 2
#define ENOSPC 28
#define EEXIST 17
#define ENOTTY 25

#define KV_MAX     16
#define KV_KEYLEN  16

/* Commands, numbered like _IOW('k', n, uint32_t). */
#define KVIOC_PUT    0x40046b01u
#define KVIOC_GET    0x80046b02u
#define KVIOC_DEL    0x40046b03u
#define KVIOC_COUNT  0x80046b04u
#define KVIOC_CLEAR  0x20006b05u

struct kv_entry {
	char     key[KV_KEYLEN];
	uint32_t val;
	uint8_t  used;
};

static struct kv_entry kv_table[KV_MAX];
static uint32_t kv_count;

static unsigned int
kv_hash(const char *key)
{
	unsigned int h = 5381;

	while (*key != '\0')
		h = h * 33 + (unsigned char)*key++;
	return h % KV_MAX;
}

static int
kv_key_valid(const char *key)
{
	size_t len;

	if (key == NULL)
		return 0;
	len = strnlen(key, KV_KEYLEN);
	if (len == 0 || len == KV_KEYLEN)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = key[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
			return 0;
	}
	return 1;
}

/* Linear probing from the key's hash slot. */
static int
kv_lookup(const char *key)
{
	unsigned int slot = kv_hash(key);

	for (unsigned int i = 0; i < KV_MAX; i++) {
		struct kv_entry *e = &kv_table[(slot + i) % KV_MAX];
		if (e->used && strncmp(e->key, key, KV_KEYLEN) == 0)
			return (int)((slot + i) % KV_MAX);
	}
	return -ENOENT;
}

static int
kv_put(const char *key, uint32_t val)
{
	unsigned int slot;

	if (kv_lookup(key) >= 0)
		return -EEXIST;
	if (kv_count >= KV_MAX)
		return -ENOSPC;
	slot = kv_hash(key);
	while (kv_table[slot].used)
		slot = (slot + 1) % KV_MAX;
	strncpy(kv_table[slot].key, key, KV_KEYLEN - 1);
	kv_table[slot].key[KV_KEYLEN - 1] = '\0';
	kv_table[slot].val = val;
	kv_table[slot].used = 1;
	kv_count++;
	return 0;
}

static int
kv_del(const char *key)
{
	int slot = kv_lookup(key);

	if (slot < 0)
		return slot;
	memset(&kv_table[slot], 0, sizeof(kv_table[slot]));
	kv_count--;
	return 0;
}

/* The driver's ioctl entry point. */
int
kvdev_ioctl(unsigned int cmd, const char *key, uint32_t *val)
{
	int slot;

	switch (cmd) {
	case KVIOC_PUT:
		if (!kv_key_valid(key) || val == NULL)
			return -EINVAL;
		if (*val == 0xdeadbeef)
			return -EINVAL;  /* reserved marker value */
		return kv_put(key, *val);
	case KVIOC_GET:
		if (!kv_key_valid(key) || val == NULL)
			return -EINVAL;
		slot = kv_lookup(key);
		if (slot < 0)
			return slot;
		*val = kv_table[slot].val;
		return 0;
	case KVIOC_DEL:
		if (!kv_key_valid(key))
			return -EINVAL;
		return kv_del(key);
	case KVIOC_COUNT:
		if (val == NULL)
			return -EINVAL;
		*val = kv_count;
		return 0;
	case KVIOC_CLEAR:
		memset(kv_table, 0, sizeof(kv_table));
		kv_count = 0;
		return 0;
	}
	return -ENOTTY;
}
