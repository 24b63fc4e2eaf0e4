// Starting an external processor (`--process CMD`) so that nothing outlives vslice.
//
// Why this is C and not Swift: between fork() and exec() in a multi-threaded process only async-signal-safe
// calls are allowed (no allocation, no locks, no Swift runtime), and prctl() is variadic, which Swift cannot
// call. Nothing else belongs in this target.
#ifndef VSLICE_PROCESS_GROUP_H
#define VSLICE_PROCESS_GROUP_H

#include <sys/types.h>

/// Starts `argv[0]` with `argv` and `envp` in a new process group, its stdin/stdout/stderr on the given file
/// descriptors, every other descriptor closed. The group is led by a small supervisor process (the pid
/// returned, which is also the group's id) that waits for the program and exits as it did (the same exit
/// status, or the same signal). The supervisor asks the kernel for a signal when vslice dies (even by
/// SIGKILL: PR_SET_PDEATHSIG) and then kills its whole group, so no processor outlives vslice.
/// Returns the supervisor's pid, or -errno when the fork failed.
pid_t vs_spawn_group(const char *path, char *const argv[], char *const envp[], int in_fd, int out_fd, int err_fd);

/// pipe2(fds, O_CLOEXEC): glibc declares pipe2 only under _GNU_SOURCE, which the Swift importer does not set.
int vs_pipe_cloexec(int fds[2]);

#endif
