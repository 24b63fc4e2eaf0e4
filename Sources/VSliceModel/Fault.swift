import Foundation
import Synchronization
import VSliceSupport

/// Fault injection for the resume tests: `VSLICE_FAULT=POINT[:N]` acts the N-th time (default 1st) the
/// process reaches POINT. Kill points (SIGKILL): audio (the one-pass encode), audio-piece (after an audio piece's
/// commit), segment-encode, segment-commit, segment-done, analysis-done (after an analysis element's commit),
/// reduce-done (after the reduce's commit), concat, publish (before the rename), published (after it, before the commit). Stall point: segment-stall (the segment
/// stops making progress until abandoned). Reject point: segment-reject (the segment fails as a filter rejecting
/// its input would: a deterministic processing error). Unset in normal use; a no-op then.
package enum Fault {
    package static let spec: (point: String, count: Int)? = {
        guard let v = ProcessInfo.processInfo.environment["VSLICE_FAULT"], !v.isEmpty else { return nil }
        let parts = v.split(separator: ":")
        return (String(parts[0]), parts.count > 1 ? Int(parts[1]) ?? 1 : 1)
    }()
    package static let hits = Mutex<[String: Int]>([:])
    /// Whether the fault applies to the element this process runs now (a worker that runs many elements scopes
    /// `VSLICE_FAULT_SEGMENT` per element).
    package static let enabled = Mutex<Bool>(true)

    /// True the N-th time `point` is reached.
    private static func reached(_ point: String) -> Bool {
        guard let spec, spec.point == point, enabled.withLock({ $0 }) else { return false }
        let n = hits.withLock { h -> Int in
            h[point, default: 0] += 1
            return h[point]!
        }
        return n == spec.count
    }

    package static func hit(_ point: String) {
        if reached(point) { kill(getpid(), SIGKILL) }
    }

    /// Fails as work that rejects its input does, every time: a processing error marked deterministic.
    package static func reject(_ point: String, _ operation: String, path: String?) throws(VSliceError) {
        guard reached(point) else { return }
        var e = VSliceError(.processing, operation, path: path, reason: "rejected by the injected fault VSLICE_FAULT=\(point)")
        e.deterministic = true
        throw e
    }

    /// Stops making progress (as a hung decoder or a stuck disk would) until the work is abandoned.
    package static func stall(_ point: String, _ watch: WorkWatch) {
        guard reached(point) else { return }
        while !watch.abandoned && !Cancellation.abortRequested { Thread.sleep(forTimeInterval: 0.05) }
    }
}
