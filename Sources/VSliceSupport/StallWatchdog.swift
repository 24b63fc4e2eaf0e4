import Foundation
import Synchronization

/// Abandons a segment attempt that has decoded nothing for `timeout` seconds (`--stall-timeout`).
package final class StallWatchdog: Sendable {
    private let running = Mutex<[ObjectIdentifier: WorkWatch]>([:])
    private let cancelledFlag = Atomic<Bool>(false)
    private let reason = Mutex<String?>(nil)
    private let ticker = Mutex<PeriodicThread?>(nil)

    package init(timeout: Double) {
        let t = PeriodicThread(every: min(0.25, timeout / 4)) { [self] in
            running.withLock { watches in
                for w in watches.values where w.idleSeconds > timeout {
                    w.abandon("stalled: \(w.stalledMeans) for \(Int(timeout)) s (--stall-timeout)")
                }
            }
        }
        ticker.withLock { $0 = t }
    }

    package var cancelled: Bool { cancelledFlag.load(ordering: .relaxed) }

    /// The task was cancelled (or taken over): abandon every running attempt, and any started later.
    package func cancelAll(_ why: String) {
        reason.withLock { $0 = $0 ?? why }
        cancelledFlag.store(true, ordering: .relaxed)
        running.withLock { for w in $0.values { w.abandon(why) } }
    }

    package func watching<T>(_ watch: WorkWatch, _ body: () throws(VSliceError) -> T) throws(VSliceError) -> T {
        watch.madeProgress()
        running.withLock { $0[ObjectIdentifier(watch)] = watch }
        if cancelled { watch.abandon(reason.withLock { $0 } ?? "the task was cancelled") }
        defer { _ = running.withLock { $0.removeValue(forKey: ObjectIdentifier(watch)) } }
        return try body()
    }

    package func stop() { ticker.withLock { $0 }?.stop() }
}
