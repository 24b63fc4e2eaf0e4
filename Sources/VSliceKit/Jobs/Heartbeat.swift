import Foundation
import Synchronization
import VSliceLedger
import VSliceMedia
import VSliceModel
import VSliceSupport

/// Keeps the task's lease fresh while it runs (every 2 s); notices a `vslice cancel`, and a lease another
/// process took over (this one was stopped past the stale limit), which must stop this run at once. Each beat
/// also records the running segment attempts' frames so far (`RunningFrames`), so that `vslice status` shows
/// the progress inside a segment.
final class Heartbeat: Sendable {
    private let ticker: PeriodicThread
    private let lostFlag = AtomicFlag()

    init(store: any Ledger, task: TaskID, running: RunningFrames? = nil,
         onCancelled: @escaping @Sendable () -> Void, onLost: @escaping @Sendable () -> Void) {
        let noticed = AtomicFlag(), lost = lostFlag
        ticker = PeriodicThread(every: 2) {
            switch store.heartbeat(task) {
            case .held: if let changed = running?.changed() { store.recordRunningFrames(task, changed) }
            case .cancelled: if noticed.set() { onCancelled() }
            case .lost: if lost.set() { onLost() }
            }
        }
    }

    /// Whether the lease was found taken over.
    var lost: Bool { lostFlag.isSet }

    func stop() { ticker.stop() }
}

/// The kept frames each running segment attempt has done so far, from the run's `PipelineEvent`s (a local
/// attempt's, or a worker's as its progress file tells): what the heartbeat records in their traces.
final class RunningFrames: Sendable {
    private struct State {
        var frames: [Int: Int] = [:]
        var recorded: [Int: Int] = [:]
    }
    private let state = Mutex(State())

    func apply(_ event: PipelineEvent) {
        state.withLock { s in
            switch event {
            case let .segmentStarted(i): s.frames[i] = 0
            case let .framesProcessed(i, n): s.frames[i, default: 0] += n
            case let .segmentDone(i, _), let .segmentFailed(i, _):
                s.frames[i] = nil
                s.recorded[i] = nil
            default: break
            }
        }
    }

    /// The counts that changed since the last call (nil: none).
    func changed() -> [Int: Int]? {
        state.withLock { s in
            let changed = s.frames.filter { s.recorded[$0.key] != $0.value }
            guard !changed.isEmpty else { return nil }
            s.recorded.merge(changed) { $1 }
            return changed
        }
    }
}
