import Foundation
import VSliceLedger
import VSliceMedia
import VSliceModel
import VSliceSupport

/// Cancelling a task: the ledger says so, the scheduler is told, the work folder goes. The kit carries this out
/// (the ledger knows no scheduler).
extension JobStore {
    /// What `cancelTask` did.
    public struct CancelOutcome: Sendable, Encodable {
        public var task: TaskID
        public var status: TaskStatus
        /// The task was unfinished and is cancelled now.
        public var changed: Bool
        /// A live process holds it: it stops at its next heartbeat (and removes its own files).
        public var running: Bool
        public var workRemoved: Bool
        /// The scheduler could not be told (its elements may still run): why, and the command to run by hand.
        public var schedulerError: String? = nil
    }

    /// Cancels a task for good. A task no process runs has its work folder and part file removed at once — under
    /// Slurm once its elements are gone, and not while the scheduler could not be told (they may still run and
    /// write there: cancelling again removes it); a running one is told through the ledger and its process stops
    /// within a heartbeat.
    public func cancelTask(_ t: TaskRecord) throws(VSliceError) -> CancelOutcome {
        let running = isLeasedByOther(t)
        let changed = try cancel(t.id)
        // Segments handed to a scheduler are cancelled there too.
        // Again for a task cancelled before: an earlier cancel may not have reached the scheduler.
        let schedulerError = changed || t.status == .cancelled ? ExecutorControl.cancelScheduled(t) : nil
        var removed = false
        if (changed || t.status == .cancelled) && !running && !t.workDir.isEmpty && schedulerError == nil {
            // Its workers end on scancel's SIGTERM writing their records: the folder goes once they are gone.
            ExecutorControl.waitUntilUnscheduled(t, timeout: 30)
            try GarbageCollector.remove(t, store: self)
            removed = !FileManager.default.fileExists(atPath: t.workDir)
        }
        return CancelOutcome(task: t.id, status: try status(of: t.id) ?? t.status, changed: changed, running: running,
                             workRemoved: removed, schedulerError: schedulerError)
    }
}
