import Foundation
import Synchronization
import VSliceLedger
import VSliceMedia
import VSliceModel
import VSliceSupport

/// Keeps the task's lease fresh while it runs (every 2 s); notices a `vslice cancel`, and a lease another
/// process took over (this one was stopped past the stale limit), which must stop this run at once.
final class Heartbeat: Sendable {
    private let ticker: PeriodicThread
    private let lostFlag = AtomicFlag()

    init(store: any Ledger, task: TaskID, onCancelled: @escaping @Sendable () -> Void, onLost: @escaping @Sendable () -> Void) {
        let noticed = AtomicFlag(), lost = lostFlag
        ticker = PeriodicThread(every: 2) {
            switch store.heartbeat(task) {
            case .held: break
            case .cancelled: if noticed.set() { onCancelled() }
            case .lost: if lost.set() { onLost() }
            }
        }
    }

    /// Whether the lease was found taken over.
    var lost: Bool { lostFlag.isSet }

    func stop() { ticker.stop() }
}
