import Foundation
import Synchronization

/// Crash injection for the resume tests: `VSLICE_FAULT=POINT[:N]` kills the process with SIGKILL the N-th
/// time (default 1st) it reaches POINT — audio, segment-encode, segment-commit, segment-done, concat,
/// publish. Unset in normal use; a no-op then.
enum Fault {
    static let spec: (point: String, count: Int)? = {
        guard let v = ProcessInfo.processInfo.environment["VSLICE_FAULT"], !v.isEmpty else { return nil }
        let parts = v.split(separator: ":")
        return (String(parts[0]), parts.count > 1 ? Int(parts[1]) ?? 1 : 1)
    }()
    static let hits = Mutex<[String: Int]>([:])

    static func hit(_ point: String) {
        guard let spec, spec.point == point else { return }
        let n = hits.withLock { h -> Int in
            h[point, default: 0] += 1
            return h[point]!
        }
        if n == spec.count { kill(getpid(), SIGKILL) }
    }
}
