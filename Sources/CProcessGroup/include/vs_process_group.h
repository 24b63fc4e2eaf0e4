// Starting an external processor (`--process CMD`) so that nothing outlives vslice.
//
// Why this is C and not Swift: between vfork() and exec() only plain system calls are allowed (no allocation,
// no locks, no Swift runtime), prctl() is variadic, which Swift cannot call, and pipe2/F_SETPIPE_SZ are
// declared only under _GNU_SOURCE. Nothing else belongs in this target.
#ifndef VSLICE_PROCESS_GROUP_H
#define VSLICE_PROCESS_GROUP_H

#include <sys/types.h>

/// Starts `path` with `argv` and `envp` (vfork + exec: nothing of vslice's memory is shared copy-on-write) as
/// the leader of a new process group, its stdin/stdout/stderr on the given file descriptors, every other
/// descriptor closed, signal dispositions and mask at their defaults. The kernel sends it SIGHUP when vslice
/// dies, even by SIGKILL (PR_SET_PDEATHSIG): the caller starts a program that then kills its group.
/// Returns the pid (which is also the group's id), or -errno when vfork failed.
pid_t vs_spawn_group(const char *path, char *const argv[], char *const envp[], int in_fd, int out_fd, int err_fd);

/// pipe2(fds, O_CLOEXEC), then the pipe's buffer raised to `size` bytes where the system allows (F_SETPIPE_SZ:
/// a 1080p frame crosses in a few writes instead of fifty).
int vs_pipe_cloexec(int fds[2], int size);

#endif
