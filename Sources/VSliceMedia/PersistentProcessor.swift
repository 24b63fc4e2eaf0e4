import CFFmpeg
import Foundation
import VSliceModel
import VSliceSupport

/// A `--process-persistent` program kept loaded for one job slot: started once (and again after it died or a
/// segment of its failed), it gets one Y4M stream per segment on the same stdin and gives one back per stream on
/// its stdout (see `ExternalProcessor`, which runs each stream on it). Owned by the slot's thread, which also
/// ends it (`close`): the program's process group then dies with that thread if vslice dies first, as a
/// per-segment program's does.
package final class PersistentProcessor {
    package let settings: ProcessorSettings
    /// The program, while it runs.
    package private(set) var child: ChildProcess?
    /// Its stdout, read across streams.
    package let reader = PipeReader(y4m: true)
    /// How many times it was started (for messages and the tests).
    package private(set) var starts = 0
    /// Streams it has given back whole since its start.
    package private(set) var streams = 0

    package init(settings: ProcessorSettings) {
        self.settings = settings
    }

    deinit { child?.kill() }

    /// The running program for the next stream; started now (with `environment`) when there is none, or the one
    /// there has ended. `started`: it was started for this stream (its start-up is this stream's).
    package func lend(environment: [String: String]) throws(VSliceError) -> (child: ChildProcess, started: Bool) {
        if let child, child.stdin >= 0, child.stdout >= 0, !child.hasExited, reader.partialBytes == 0 {
            reader.nextStream()
            return (child, false)
        }
        discard()
        var env = environment
        for key in ["VSLICE_SEGMENT", "VSLICE_FIRST_FRAME", "VSLICE_FRAMES", "VSLICE_BUFFER_BEFORE", "VSLICE_BUFFER_AFTER"] {
            env[key] = nil
        }
        env["VSLICE_PERSISTENT"] = "1"
        let c = try ChildProcess(command: settings.command, directory: settings.directory, environment: env)
        child = c
        reader.nextStream()
        starts += 1
        streams = 0
        return (c, true)
    }

    /// A stream came back whole: the program stays for the next one.
    package func streamDone() { streams += 1 }

    /// Kills the program (a stream that failed leaves it in no known state); the next stream starts another.
    package func discard() {
        child?.kill()
        child = nil
        reader.reset()
    }

    /// Ends its input and gives it `grace` seconds to exit; then kills what is left of its group. The exit status
    /// (nil: it had to be killed, or none ran).
    @discardableResult
    package func close(grace: Double = 2) -> ChildProcess.Termination? {
        guard let c = child else { return nil }
        child = nil
        c.closeStdin()
        let deadline = monotonicSeconds() + grace
        while !c.hasExited && monotonicSeconds() < deadline {
            // Its output is no one's now; drained so that it is not blocked writing it.
            var sink = [UInt8](repeating: 0, count: 1 << 16)
            for fd in [c.stdout, c.stderr] where fd >= 0 { _ = sink.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) } }
            usleep(5_000)
        }
        reader.reset()
        if !c.hasExited { c.kill(); return nil }
        return c.reap().0
    }

    /// CPU seconds the program's process group has used so far (its processes' own and their reaped children's,
    /// from /proc): a segment's share is the difference across its stream.
    package var groupCPUSeconds: Double {
        guard let pgid = child?.pid else { return 0 }
        return Self.cpuSeconds(ofGroup: pgid)
    }

    package static func cpuSeconds(ofGroup pgid: pid_t) -> Double {
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return 0 }
        var total = 0.0
        for name in names where name.first?.isNumber == true {
            guard let stat = try? String(contentsOfFile: "/proc/\(name)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            // After the command's closing parenthesis: state (3), ppid, pgrp (5) … utime (14), stime, cutime, cstime.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 14, Int32(fields[2]) == pgid else { continue }
            total += (11...14).compactMap { Double(fields[$0]) }.reduce(0, +) / ticks
        }
        return total
    }
}
