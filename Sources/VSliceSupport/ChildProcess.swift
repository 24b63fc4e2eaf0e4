import CProcessGroup
import Foundation

/// A program started with `/bin/sh -c COMMAND` in a process group of its own, which dies with vslice: its
/// stdin, stdout and stderr are non-blocking pipes held here. Dropping it, or `kill()`, kills the whole group;
/// `reap` collects it with the CPU time it and its children used.
///
/// The group is led by a small shell (`supervisor`) that runs the command and waits for it. The kernel sends
/// that shell SIGHUP when vslice dies, even by SIGKILL (see `vs_spawn_group`), and it then kills its group: no
/// processor outlives vslice. It is a fresh program, not a fork of vslice: a forked supervisor would keep all of
/// vslice's memory shared copy-on-write, and every page vslice wrote afterwards would be copied (measured: a
/// third more page faults and 1.5 s of system time on a 10 s 1080p encode).
package final class ChildProcess {
    /// The supervisor's pid, which is also the group's id.
    package let pid: pid_t
    /// Our ends of the pipes (non-blocking); -1 once closed.
    package private(set) var stdin: Int32
    package private(set) var stdout: Int32
    package private(set) var stderr: Int32
    private var reaped = false

    /// How the program ended.
    package enum Termination: Equatable, CustomStringConvertible {
        case exited(Int32)
        case signalled(Int32)

        package var description: String {
            switch self {
            case .exited(let code) where code > 128 && code < 128 + 65:
                let sig = code - 128
                return "exit status \(code): killed by signal \(sig)" + (strsignal(sig).map { " (\(String(cString: $0)))" } ?? "")
            case .exited(let code): return "exit status \(code)"
            case .signalled(let sig): return "killed by signal \(sig)" + (strsignal(sig).map { " (\(String(cString: $0)))" } ?? "")
            }
        }
        package var succeeded: Bool { self == .exited(0) }
    }

    /// Starts `command` with `environment` (the whole environment the program gets).
    /// Runs `command` in `directory` (nil: this process's own).
    package init(command: String, directory: String? = nil, environment: [String: String]) throws(VSliceError) {
        var fds: [Int32] = [-1, -1, -1, -1, -1, -1]
        defer {
            // The child's ends, and ours when the start failed.
            for fd in fds where fd >= 0 { close(fd) }
        }
        for k in 0..<3 {
            var pair: [Int32] = [-1, -1]
            guard vs_pipe_cloexec(&pair, k < 2 ? 1 << 20 : 0) == 0 else {
                throw VSliceError(.processing, "start processor", reason: "cannot make a pipe: \(String(cString: strerror(errno)))")
            }
            fds[2 * k] = pair[0]
            fds[2 * k + 1] = pair[1]
        }
        // stdin: the child reads fds[0], we write fds[1]; stdout and stderr: the child writes, we read.
        let childIn = fds[0], ourIn = fds[1], ourOut = fds[2], childOut = fds[3], ourErr = fds[4], childErr = fds[5]
        let argv = ["/bin/sh", "-c", Self.supervisor, "vslice-processor", command, directory ?? "."]
        let envp = environment.map { "\($0.key)=\($0.value)" }
        let started = Self.withCStrings(argv) { a in
            Self.withCStrings(envp) { e in vs_spawn_group("/bin/sh", a, e, childIn, childOut, childErr) }
        }
        guard started > 0 else {
            throw VSliceError(.processing, "start processor", reason: "fork failed: \(String(cString: strerror(-started)))")
        }
        pid = started
        stdin = ourIn
        stdout = ourOut
        stderr = ourErr
        for fd in [ourIn, ourOut, ourErr] { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        // Ours now: not closed by the defer.
        fds = [childIn, -1, -1, childOut, -1, childErr]
    }

    /// Runs `$1` with the pipes (an asynchronous command's stdin would be /dev/null: the pipe is handed over
    /// as fd 3), holds none of them itself, and kills the group on SIGHUP. Exits as the command did (a command
    /// killed by signal N: 128 + N).
    /// `$1`: the command; `$2`: the folder it runs in (a folder that is gone: exit 126, the shell's message on
    /// the program's stderr).
    package static let supervisor = "exec 3<&0; trap 'kill -KILL 0' HUP; cd -- \"$2\" || exit 126; /bin/sh -c \"$1\" <&3 3<&- & exec 0<&- 1>&- 2>&- 3<&-; wait $!"

    deinit {
        kill()
        for fd in [stdin, stdout, stderr] where fd >= 0 { close(fd) }
    }

    /// Ends the program's input.
    package func closeStdin() {
        if stdin >= 0 { close(stdin); stdin = -1 }
    }

    package func closeStdout() {
        if stdout >= 0 { close(stdout); stdout = -1 }
    }

    package func closeStderr() {
        if stderr >= 0 { close(stderr); stderr = -1 }
    }

    /// Kills every process of the group and reaps the supervisor (nothing is left running).
    package func kill() {
        guard !reaped else { return }
        Glibc.kill(-pid, SIGKILL)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        reaped = true
    }

    /// Has the program ended (without reaping it)?
    package var hasExited: Bool {
        guard !reaped else { return true }
        var info = siginfo_t()
        return waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info._sifields._sigchld.si_pid == pid
    }

    /// Reaps the ended program: how it ended and the CPU seconds it (and the children it waited for) used.
    /// What it left running in its group is killed first. Call once `hasExited` is true (else this blocks).
    package func reap() -> (Termination, cpu: Double) {
        precondition(!reaped, "reaped twice")
        var info = siginfo_t()
        while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) < 0 && errno == EINTR {}
        // The supervisor is a zombie now, so its pid (the group's id) cannot be reused: safe to signal.
        Glibc.kill(-pid, SIGKILL)
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) < 0 && errno == EINTR {}
        reaped = true
        let cpu = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
            + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
        // WIFSIGNALED/WEXITSTATUS are macros: the status word decoded by hand.
        let sig = status & 0x7f
        return (sig != 0 ? .signalled(sig) : .exited((status >> 8) & 0xff), cpu)
    }

    /// Runs `body` with `strings` as a NULL-terminated C array.
    private static func withCStrings<T>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> T) -> T {
        var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
        pointers.append(nil)
        defer { for p in pointers { free(p) } }
        return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
    }
}
