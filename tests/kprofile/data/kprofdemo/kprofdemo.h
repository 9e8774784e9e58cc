/* kprofdemo: the calculations behind /sys/kernel/debug/kprofdemo. */
#ifndef KPROFDEMO_H
#define KPROFDEMO_H

long kprofdemo_classify(long v);
long kprofdemo_collatz(long v);
long kprofdemo_unused(long v);

#endif
