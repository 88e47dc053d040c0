/*
 * An in-memory file system behind a `struct sys`, for tests of code that
 * keeps files (the cache store): no disk, deterministic, thread-safe.
 *
 * Contract:
 *  - fs ops (open, read, pread, write, fsync, close, rename, unlink, mkdir,
 *    rmdir, stat, fstat, ftruncate, list_dir) work on a tree of inodes with
 *    POSIX semantics where the store relies on them: a name is a link to an
 *    inode, an open descriptor holds the inode, so unlink or rename-over
 *    leaves open readers reading the old bytes; the parent must exist;
 *    O_CREAT/O_EXCL/O_TRUNC/O_APPEND; a descriptor opened without O_TRUNC
 *    writes from offset 0 over what is there.  "/" always exists.
 *  - The clock is fake: the test sets and advances it.  Net ops are absent
 *    (their wrappers answer -ENOSYS).
 *  - Faults: sys_memfs_fail_nth(m, n, err, persistent) makes the nth fs call
 *    from now fail with -err (persistent: that one and every later one); a
 *    failing close still releases the descriptor, as Linux does.
 *    sys_memfs_short_writes(m, max) caps every write at max bytes.
 *  - Accounting: every fs call is counted (sys_memfs_calls), open
 *    descriptors too (sys_memfs_open_files), so a test can prove nothing
 *    leaks on any path.
 *  - The helpers below (put, get, ...) are the test's own hands on the tree:
 *    they are neither counted nor faulted.
 */
#ifndef GLASSPROXY_SYS_MEMFS_H
#define GLASSPROXY_SYS_MEMFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "glassproxy/sys.h"

struct sys_memfs;

struct sys_memfs *sys_memfs_new(void);
void sys_memfs_free(struct sys_memfs *m);
struct sys *sys_memfs_sys(struct sys_memfs *m);

void sys_memfs_set_clock(struct sys_memfs *m, int64_t mono_ms, time_t wall_sec);
void sys_memfs_advance_ms(struct sys_memfs *m, int64_t ms);

/* n = 0 turns faults off.  The count starts at the next call (1). */
void sys_memfs_fail_nth(struct sys_memfs *m, uint64_t n, int err,
			bool persistent);
void sys_memfs_short_writes(struct sys_memfs *m, size_t max);
uint64_t sys_memfs_calls(struct sys_memfs *m);
int sys_memfs_open_files(struct sys_memfs *m);

/* Create or replace a file (and its missing parent directories). */
int sys_memfs_put(struct sys_memfs *m, const char *path, const void *data,
		  size_t len);
/* A malloc'd copy of a file's bytes (NULL if absent); caller frees. */
char *sys_memfs_get(struct sys_memfs *m, const char *path, size_t *len);
bool sys_memfs_exists(struct sys_memfs *m, const char *path);
int sys_memfs_truncate(struct sys_memfs *m, const char *path, size_t len);
/* Regular files whose path starts with prefix. */
size_t sys_memfs_count_files(struct sys_memfs *m, const char *prefix);
/* Up to max file paths under prefix (valid until the tree changes). */
size_t sys_memfs_list_files(struct sys_memfs *m, const char *prefix,
			    const char **paths, size_t max);

#endif
