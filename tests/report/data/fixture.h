/*
 * fixture.h - the report fixture: an instrumented PIE (fixprog.c, with an
 * uninstrumented kcov client in fixmain.c) linked against an instrumented
 * shared library (fixlib.c).  Comments "MARK: name" name source lines; the
 * tests look the line numbers up, so the files can change freely.
 */
#ifndef FIXTURE_H
#define FIXTURE_H

int lib_checksum(const char *s);
void lib_note_overflow(int d);
int lib_unreached(int x);

int prog_run(const char *kind, const char *arg);
int prog_digits(const char *s);
int prog_letters(const char *s);
int prog_unreached(int x);
int prog_uninstrumented(int x);

#endif
