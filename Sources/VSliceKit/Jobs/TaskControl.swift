import Foundation

/// What the commands that steer tasks decide: a task's live status, which tasks `resume --all` takes up, and
/// what cancelling one does. Policy lives here; the command line only parses and prints.
extension JobStore {
    /// A task's status as it is now: a `running` task whose process is gone is `interrupted`; one whose holder
    /// sends no heartbeat (stopped, or on another host and silent) is `stale`; with why.
    public func liveStatus(_ t: TaskRecord) -> (status: String, note: String?) {
        guard t.status == .running else { return (t.status.rawValue, nil) }
        if isLeasedByOther(t) { return (TaskStatus.running.rawValue, nil) }
        guard let pid = t.leasePid else {
            // `--detach`: the scheduler runs the elements, no coordinator watches them.
            if t.storedRequest?.executor.kind == .slurm {
                return ("detached", "its elements are Slurm's; `vslice resume \(t.id.short)` collects them and finishes the task")
            }
            return (TaskStatus.interrupted.rawValue, "no process holds it")
        }
        if t.leaseHost == Host.name && kill(pid_t(pid), 0) != 0 && errno == ESRCH {
            return (TaskStatus.interrupted.rawValue, "its process \(pid) is gone")
        }
        let quiet = t.leaseHeartbeat.map { Int(Date().timeIntervalSince1970 - $0) } ?? 0
        return ("stale", "no heartbeat from process \(pid) on \(t.leaseHost ?? "?") for \(quiet) s")
    }

    /// The tasks `vslice resume --all` takes up: unfinished ones no live process holds, oldest first.
    public func resumableTasks() throws(VSliceError) -> [TaskRecord] {
        try tasks().filter { $0.status.isResumable && !isLeasedByOther($0) }
    }

    /// What `resume --all` takes up: the resumable tasks except those whose failure would repeat (bad input or
    /// options, a refused resume, a deterministic processing failure) — `vslice resume ID` still tries one.
    /// The second list is those passed over.
    public func tasksToResumeAll() throws(VSliceError) -> (resume: [TaskRecord], passedOver: [TaskRecord]) {
        let all = try resumableTasks()
        let repeats = { (t: TaskRecord) in t.status == .failed && t.failureDeterministic == true }
        return (all.filter { !repeats($0) }, all.filter(repeats))
    }

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
