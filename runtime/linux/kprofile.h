/*
 * kprofile.h - kcov.ko's profile registry (kprofile.c), as device.c sees it.
 */
#ifndef KCOV_KPROFILE_H
#define KCOV_KPROFILE_H

/* Create /sys/kernel/debug/kcov-profile and watch modules load: 0 or -errno. */
int kcov_profile_init(void);
/* Remove every file and stop watching. */
void kcov_profile_exit(void);

#endif /* KCOV_KPROFILE_H */
