#define _GNU_SOURCE
#include "vs_process_group.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

// Stdin/stdout/stderr from the given descriptors, every other descriptor closed (another segment's pipe held
// open here would keep that processor from ever seeing the end of its input).
static int vs_wire(int in_fd, int out_fd, int err_fd) {
    // Moved above 2 first, so that dup2 onto 0..2 cannot close one still needed.
    int in = fcntl(in_fd, F_DUPFD, 3), out = fcntl(out_fd, F_DUPFD, 3), err = fcntl(err_fd, F_DUPFD, 3);
    if (in < 0 || out < 0 || err < 0) return -1;
    if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) return -1;
    syscall(SYS_close_range, 3U, ~0U, 0U);
    return 0;
}

pid_t vs_spawn_group(const char *path, char *const argv[], char *const envp[], int in_fd, int out_fd, int err_fd) {
    // No signal may reach the child before its handlers are reset: vslice's would run on a borrowed stack.
    sigset_t all, saved;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &saved);
    pid_t parent = getpid();
    pid_t pid = vfork();
    if (pid == 0) {
        setpgid(0, 0);
        // vslice's handlers and ignored signals go back to the defaults (an ignored SIGINT survives exec).
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        for (int s = 1; s < NSIG; s++) {
            if (s != SIGKILL && s != SIGSTOP) sigaction(s, &dfl, NULL);
        }
        prctl(PR_SET_PDEATHSIG, SIGHUP);
        // vslice may have died before the request above took effect.
        if (getppid() != parent) _exit(129);
        if (vs_wire(in_fd, out_fd, err_fd) != 0) _exit(126);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execve(path, argv, envp);
        _exit(127);
    }
    int failure = pid < 0 ? errno : 0;
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    return pid < 0 ? -failure : pid;
}

int vs_pipe_cloexec(int fds[2], int size) {
    if (pipe2(fds, O_CLOEXEC) != 0) return -1;
    if (size > 0) fcntl(fds[0], F_SETPIPE_SZ, size);  // a smaller pipe still works: not an error
    return 0;
}
