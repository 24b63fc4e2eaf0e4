#define _GNU_SOURCE
#include "vs_process_group.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

// The supervisor's handler for vslice's death: kill everything in the group (itself included).
static void vs_parent_died(int sig) {
    (void)sig;
    kill(0, SIGKILL);
    _exit(137);
}

// Everything inherited from vslice goes back to the defaults: its handlers and ignored signals (an ignored
// SIGINT or SIGTERM would survive exec) and the blocked-signal mask of the thread that forked.
static void vs_reset_signals(void) {
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; s++) {
        if (s != SIGKILL && s != SIGSTOP) sigaction(s, &dfl, NULL);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

// Stdin/stdout/stderr from the given descriptors, every other descriptor closed (another segment's pipe
// held open here would keep that processor from ever seeing the end of its input).
static int vs_wire(int in_fd, int out_fd, int err_fd) {
    // Moved above 2 first, so that dup2 onto 0..2 cannot close one still needed.
    int in = fcntl(in_fd, F_DUPFD, 3), out = fcntl(out_fd, F_DUPFD, 3), err = fcntl(err_fd, F_DUPFD, 3);
    if (in < 0 || out < 0 || err < 0) return -1;
    if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) return -1;
    syscall(SYS_close_range, 3U, ~0U, 0U);
    return 0;
}

static void vs_supervise(pid_t parent, const char *path, char *const argv[], char *const envp[],
                         int in_fd, int out_fd, int err_fd) {
    setpgid(0, 0);
    vs_reset_signals();
    struct sigaction on_death;
    memset(&on_death, 0, sizeof on_death);
    on_death.sa_handler = vs_parent_died;
    sigaction(SIGHUP, &on_death, NULL);
    prctl(PR_SET_PDEATHSIG, SIGHUP);
    // vslice may have died before the request above took effect.
    if (getppid() != parent) vs_parent_died(0);
    if (vs_wire(in_fd, out_fd, err_fd) != 0) _exit(126);

    pid_t child = fork();
    if (child < 0) _exit(126);
    if (child == 0) {
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        sigaction(SIGHUP, &dfl, NULL);
        execve(path, argv, envp);
        _exit(127);
    }
    // The supervisor holds no pipe end: the processor's end of output is vslice's end of file.
    close(0);
    close(1);
    close(2);
    int status = 0;
    while (waitpid(child, &status, 0) < 0) {
        if (errno != EINTR) _exit(126);
    }
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        sigaction(sig, &dfl, NULL);
        kill(getpid(), sig);
        _exit(128 + sig);
    }
    _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 126);
}

pid_t vs_spawn_group(const char *path, char *const argv[], char *const envp[], int in_fd, int out_fd, int err_fd) {
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) return -errno;
    if (pid == 0) {
        vs_supervise(parent, path, argv, envp, in_fd, out_fd, err_fd);
        _exit(126);
    }
    // Also set from this side, so the group exists before the caller can signal it.
    setpgid(pid, pid);
    return pid;
}

int vs_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }
