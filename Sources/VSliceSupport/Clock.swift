import Foundation

public enum Host {
    public static let name: String = {
        var buf = [CChar](repeating: 0, count: 256)
        gethostname(&buf, buf.count)
        return buf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }()
}

package func now() -> Double { Date().timeIntervalSince1970 }
/// When this process started, by the kernel's account (`/proc/self/stat` field 22, clock ticks after boot), as
/// a Unix time; nil where that cannot be read (not Linux).
package enum ProcessClock {
    package static func startedAt() -> Double? {
        guard let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8) else { return nil }
        return startedAt(stat: stat, ticksPerSecond: Double(sysconf(Int32(_SC_CLK_TCK))), bootNow: bootSeconds(), now: now())
    }

    /// The start time `stat` (a `/proc/PID/stat` line) gives, with the clock read now: seconds since boot and Unix time.
    package static func startedAt(stat: String, ticksPerSecond: Double, bootNow: Double, now: Double) -> Double? {
        // Field 2 (the command) is in parentheses and may hold spaces: count from the last ')'.
        guard ticksPerSecond > 0, let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // Fields 3… follow: starttime is field 22, the 20th after the parenthesis.
        guard fields.count >= 20, let ticks = Double(fields[19]) else { return nil }
        let age = bootNow - ticks / ticksPerSecond
        guard age >= 0, age < 365 * 86_400 else { return nil }
        return now - age
    }

    /// Seconds since boot (CLOCK_BOOTTIME, the clock `starttime` counts in).
    package static func bootSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_BOOTTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// Seconds from this process's start until now (nil where unknown).
    package static func age() -> Double? { startedAt().map { max(0, now() - $0) } }
}
