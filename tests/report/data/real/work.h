/* work.h - the real-program scenario of the format tests. */
#ifndef WORK_H
#define WORK_H

int count_digits(const char *s);
int count_upper(const char *s);
int never_called(int x);
int not_instrumented(int x);
int work(const char *kind, const char *arg);

#endif
